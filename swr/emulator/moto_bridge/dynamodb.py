"""DynamoDB: conditional writes are atomic (patch 13), and item results are written as JSON
directly (patch 43)."""

from __future__ import annotations

import json
import threading
from typing import Any

from swr.emulator.moto_bridge._state import _Patches, _require

# --------------------------------------------------------------------------------------------------
# 13. Atomic conditional writes in DynamoDB
# --------------------------------------------------------------------------------------------------
_dynamodb_write_lock = threading.RLock()


def _patch_dynamodb_atomic_writes(p: _Patches) -> None:
    from moto.dynamodb.models import DynamoDBBackend

    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        original = _require(DynamoDBBackend, name)

        def atomic(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with _dynamodb_write_lock:
                return _original(self, *args, **kwargs)

        p.set(DynamoDBBackend, name, atomic)


# --------------------------------------------------------------------------------------------------
# 43. DynamoDB item results are written as JSON directly
# --------------------------------------------------------------------------------------------------
# An item result is already the wire form once moto has expanded its DynamoTypes: attribute-value
# maps whose member names are the shape's. moto's model-driven serializer walks it member by
# member (a record read cost more to serialize than everything else the read did). Results with
# what JSON cannot carry as is (bytes of a B or BS value, datetimes) still go through moto's.

_ITEM_OPERATIONS = frozenset(
    {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}
)


class _NotPlainJson(Exception):
    pass


def _plain_json(value: Any) -> Any:
    raise _NotPlainJson(type(value).__name__)


def _patch_dynamodb_item_json(p: _Patches) -> None:
    from moto.core.responses import ActionResult
    from moto.dynamodb.responses import DynamoResult

    original = _require(ActionResult, "execute_result")  # DynamoResult inherits it

    def execute_result(self: Any, context: Any) -> Any:
        if context.operation_model.name not in _ITEM_OPERATIONS or not isinstance(self.result, dict):
            return original(self, context)
        try:
            body = json.dumps(self.result, separators=(",", ":"), default=_plain_json)
        except _NotPlainJson:
            return original(self, context)
        return 200, {"Content-Type": "application/x-amz-json-1.0"}, body

    p.set(DynamoResult, "execute_result", execute_result)
