"""DynamoDB: conditional writes are atomic (patch 13), item results are written as JSON directly
(patch 43), and an item is converted to plain JSON once per read, projected before (patch 44)."""

from __future__ import annotations

import base64
import copy
import json
import re
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


# --------------------------------------------------------------------------------------------------
# 44. An item read converts each value once, and a projection only what it returns
# --------------------------------------------------------------------------------------------------
# moto's DynamoType.to_regular_json deep-copies a value's whole subtree and then converts each
# child, which deep-copies it again: a nested map is copied once per level it is deep. And
# Item.project converts the whole item before picking the projected attributes, so a read of two
# small attributes of a large record (the boot gate's poll) cost more than reading all of it. Both
# give the same result here; the tree is copied once.
_LIST_ELEMENT = re.compile(r"(.+)\[(\d+)\]$")  # moto's own reading of "name[3]" (find_nested_key)


def _patch_dynamodb_item_reads(p: _Patches) -> None:
    from moto.dynamodb.models.dynamo_type import (
        DynamoType,
        Item,
        deserializer,
        merge_dicts,  # botocore's, as moto uses it
        serializer,
    )
    from moto.dynamodb.models.utilities import find_nested_key

    moto_to_regular_json = _require(DynamoType, "to_regular_json")
    moto_project = _require(Item, "project")

    def to_regular_json(self: Any) -> dict[str, Any]:
        value = self.value
        if isinstance(value, dict):
            value = {
                k: v.to_regular_json() if isinstance(v, DynamoType) else copy.deepcopy(v) for k, v in value.items()
            }
        elif isinstance(value, list):
            value = [v.to_regular_json() if isinstance(v, DynamoType) else copy.deepcopy(v) for v in value]
        else:
            value = copy.deepcopy(value)
        if self.is_binary() and isinstance(value, str):
            value = base64.b64decode(value)
        return {self.type: value}

    def project(self: Any, projection_expressions: list[list[str]]) -> Any:
        result: dict[str, Any] = {}
        for expression in projection_expressions:
            element = _LIST_ELEMENT.match(expression[0])
            head = element.group(1) if element else expression[0]
            # A fresh copy per expression, as moto's: merging may keep references into it.
            plain = {head: deserializer.deserialize(self.attrs[head].to_regular_json())} if head in self.attrs else {}
            merge_dicts(result, find_nested_key(expression, plain))
        return Item(hash_key=self.hash_key, range_key=self.range_key, attrs=dict(serializer.serialize(result)["M"]))

    to_regular_json.__wrapped__ = moto_to_regular_json  # type: ignore[attr-defined]  # the canary compares
    project.__wrapped__ = moto_project  # type: ignore[attr-defined]
    p.set(DynamoType, "to_regular_json", to_regular_json)
    p.set(Item, "project", project)
