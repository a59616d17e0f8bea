"""All access to the application records goes through this class."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from handlers.core.aws import api_call, client, error_code
from handlers.core.errors import RecordConflict, RecordNotFound
from handlers.core.record import AppRecord, PermitToken

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_item(record: AppRecord) -> dict[str, Any]:
    # JSON first so datetimes become ISO strings and floats become Decimals DynamoDB accepts.
    plain = json.loads(record.model_dump_json(), parse_float=Decimal)
    return {key: _serializer.serialize(value) for key, value in plain.items()}


def from_item(item: dict[str, Any]) -> AppRecord:
    plain = {key: _deserializer.deserialize(value) for key, value in item.items()}
    return AppRecord.model_validate_json(json.dumps(plain, default=_decimal))


def _decimal(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


class RecordStore:
    def __init__(self, table_name: str, dynamodb: Any = None) -> None:
        self.table_name = table_name
        self._dynamodb = dynamodb

    @property
    def dynamodb(self) -> Any:
        return self._dynamodb or client("dynamodb")

    def get(self, app: str) -> AppRecord | None:
        with api_call("read application record"):
            response = self.dynamodb.get_item(TableName=self.table_name, Key={"app": {"S": app}}, ConsistentRead=True)
        item = response.get("Item")
        return from_item(item) if item else None

    def require(self, app: str) -> AppRecord:
        record = self.get(app)
        if record is None:
            raise RecordNotFound(f"application {app!r} has no record in table {self.table_name}")
        return record

    def create(self, record: AppRecord) -> AppRecord:
        stored = record.model_copy(update={"version": 1})
        self._put(stored, "attribute_not_exists(app)", {}, f"application {record.app!r} is already registered")
        return stored

    def save(self, record: AppRecord) -> AppRecord:
        """Write ``record`` if nobody wrote since it was read; returns the stored copy."""
        stored = record.model_copy(update={"version": record.version + 1})
        self._put(
            stored,
            "version = :expected",
            {":expected": {"N": str(record.version)}},
            f"record of {record.app!r} changed since version {record.version}",
        )
        return stored

    def update(self, app: str, change: Callable[[AppRecord], None], attempts: int = 5) -> AppRecord:
        """Read-modify-write without a lease (housekeeping that any execution may do), retrying
        when another writer came first."""
        for _ in range(attempts):
            record = self.require(app)
            change(record)
            try:
                return self.save(record)
            except RecordConflict:
                continue
        raise RecordConflict(f"record of {app!r} kept changing")

    def put_permit_token(self, token: PermitToken) -> None:
        """Store (or replace) a permit's task token under its own key."""
        item = {key: _serializer.serialize(value) for key, value in token.model_dump().items() if key != "key"}
        with api_call("write the permit's token"):
            self.dynamodb.put_item(TableName=self.table_name, Item={"app": {"S": token.key}, **item})

    def delete(self, record: AppRecord) -> None:
        """Remove ``record`` if nobody wrote since it was read (an unregister must not lose
        to a failover that took the lease in between)."""
        try:
            with api_call("delete application record"):
                self.dynamodb.delete_item(
                    TableName=self.table_name,
                    Key={"app": {"S": record.app}},
                    ConditionExpression="version = :expected",
                    ExpressionAttributeValues={":expected": {"N": str(record.version)}},
                )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                raise RecordConflict(f"record of {record.app!r} changed since version {record.version}") from error
            raise

    def _put(self, record: AppRecord, condition: str, values: dict[str, Any], conflict: str) -> None:
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "Item": to_item(record),
            "ConditionExpression": condition,
        }
        if values:
            kwargs["ExpressionAttributeValues"] = values
        try:
            with api_call("write application record"):
                self.dynamodb.put_item(**kwargs)
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                raise RecordConflict(conflict) from error
            raise
