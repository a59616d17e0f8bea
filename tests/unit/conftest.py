from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from handlers.core import aws, clock
from handlers.core.record_store import RecordStore
from handlers.core.settings import get_settings
from tests.helpers.records import TABLE


@pytest.fixture
def aws_mock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in {
        "AWS_DEFAULT_REGION": "ap-northeast-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "SWR_TABLE_NAME": TABLE,
        "SWR_SDK_MAX_ATTEMPTS": "1",
    }.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    aws.clients().clear()
    with mock_aws():
        boto3.client("dynamodb").create_table(
            TableName=TABLE,
            AttributeDefinitions=[{"AttributeName": "app", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "app", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield
    aws.clients().clear()
    get_settings.cache_clear()
    clock.reset_source()


@pytest.fixture
def store(aws_mock: None) -> RecordStore:
    return RecordStore(TABLE)
