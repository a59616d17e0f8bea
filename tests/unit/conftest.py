from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from handlers.core import aws, clock
from handlers.core.record import AppRecord, EfsMount, LaunchSpec, SubnetChoice
from handlers.core.record_store import RecordStore
from handlers.core.settings import get_settings

TABLE = "swr-apps-test"


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


def make_record(app: str = "demo", **changes: object) -> AppRecord:
    record = AppRecord(
        app=app,
        launch_spec=LaunchSpec(image_id="ami-1234", instance_types=["m6i.large"], security_group_ids=["sg-app"]),
        subnets=[
            SubnetChoice(az="ap-northeast-1a", subnet_id="subnet-a"),
            SubnetChoice(az="ap-northeast-1c", subnet_id="subnet-c"),
        ],
        target_group_arns=["arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:targetgroup/demo/1"],
        efs=EfsMount(file_system_id="fs-1234"),
        blackhole_security_group_id="sg-blackhole",
        current_instance_id="i-old",
        current_az="ap-northeast-1a",
    )
    return record.model_copy(update=changes)
