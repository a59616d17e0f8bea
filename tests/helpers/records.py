"""The unit tests' application record and the name of the table the moto fixtures create
(tests/unit/conftest.py)."""

from __future__ import annotations

from handlers.core.record import AppRecord, EfsMount, LaunchSpec, SubnetChoice

TABLE = "swr-apps-test"


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
