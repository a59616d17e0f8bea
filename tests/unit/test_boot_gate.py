"""The boot gate on a replacement instance, scenario by scenario.

The record lives in a moto DynamoDB table written with the workflow's own model, so the gate
is checked against exactly what the handlers store. Step Functions, the host and time are
fakes: every host and workflow call lands in one journal, so the order is asserted directly.
"""

from __future__ import annotations

import json
import logging
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from handlers.core.record import AppState, EfsMount, Permit, PermitToken
from handlers.core.record_store import RecordStore, to_item
from handlers.core.steps import BootReport
from rms_hooks import boot_gate
from rms_hooks.boot_gate import (
    BOOT_GATE_FAILED,
    BootGate,
    ConfigError,
    GateConfig,
    GateOutcome,
    Identity,
    PermitView,
    RecordView,
    Verdict,
    decide,
    load_config,
    main,
)
from rms_hooks.host import IdentityError, LinuxHost, mounted_at, read_identity
from rms_hooks.imds import ImdsClient, ImdsError
from tests.helpers.aws import client as aws_client
from tests.helpers.records import make_record

REGION = "ap-northeast-1"
TABLE = "swr-apps"
APP = "demo"
ME = "i-0replacement"
OTHER = "i-0another"
GENERATION = 3
TOKEN = "token-for-generation-3"
FS = "fs-0123456789abcdef0"
MOUNT_POINT = "/mnt/swr"
START = 1_800_000_000.0  # the fake clock's epoch

Journal = list[tuple[Any, ...]]


# --- fakes -------------------------------------------------------------------------------
class FakeTime:
    """sleep() moves the clock, so waiting 900 s takes no real time."""

    def __init__(self) -> None:
        self.now = START
        self.sleeps: list[float] = []
        self.on_sleep: Callable[[int], None] | None = None

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep(len(self.sleeps))


class FakeHost:
    def __init__(self, journal: Journal, identity: Identity | None = None) -> None:
        self.journal = journal
        self.me = identity or Identity(instance_id=ME, az="ap-northeast-1c", region=REGION, app_tag=APP, generation=3)
        self.identity_error: Exception | None = None
        self.mount_error: Exception | None = None
        self.start_error: Exception | None = None
        self.after_mount: Callable[[], None] | None = None

    def identity(self) -> Identity:
        self.journal.append(("identity",))
        if self.identity_error:
            raise self.identity_error
        return self.me

    def mount_efs(self, file_system_id: str, mount_point: str, region: str) -> None:
        self.journal.append(("mount", file_system_id, mount_point, region))
        if self.mount_error:
            raise self.mount_error
        if self.after_mount:
            self.after_mount()

    def start_workload(self) -> None:
        self.journal.append(("start",))
        if self.start_error:
            raise self.start_error

    def self_fence(self, reason: str) -> None:
        self.journal.append(("self_fence", reason))

    def calls(self) -> list[str]:
        return [str(entry[0]) for entry in self.journal]


class FakeStepFunctions:
    """Records the task-token calls; ``errors`` maps a method to the error code it raises."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.errors: dict[str, str] = {}

    def _call(self, name: str, **kwargs: Any) -> dict[str, Any]:
        self.journal.append((name, kwargs))
        if name in self.errors:
            code = self.errors[name]
            raise ClientError({"Error": {"Code": code, "Message": f"{code} (fake)"}}, name)
        return {}

    def send_task_heartbeat(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("send_task_heartbeat", **kwargs)

    def send_task_success(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("send_task_success", **kwargs)

    def send_task_failure(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("send_task_failure", **kwargs)


# --- the world ---------------------------------------------------------------------------
class World:
    def __init__(self) -> None:
        self.journal: Journal = []
        self.time = FakeTime()
        self.host = FakeHost(self.journal)
        self.sfn = FakeStepFunctions(self.journal)
        self.dynamodb = aws_client("dynamodb")
        self.config = GateConfig(app=APP, table_name=TABLE, region=REGION, permit_timeout_seconds=900)

    def store(
        self,
        *,
        generation: int = GENERATION,
        permit_for: str | None = None,
        permit_generation: int | None = None,
        token: str = TOKEN,
        state: AppState = AppState.SWITCHING,
        current: str = "i-0old",
    ) -> None:
        """Write the record as the workflow's handlers would."""
        permit = None
        if permit_for is not None:
            permit_generation = generation if permit_generation is None else permit_generation
            key = PermitToken.key_for(APP, "AROAINSTANCEROLE", permit_for)
            RecordStore(TABLE, self.dynamodb).put_permit_token(
                PermitToken(
                    key=key, task_token=token, instance_id=permit_for, generation=permit_generation, expires_at=0
                )
            )
            permit = Permit(
                generation=permit_generation,
                instance_id=permit_for,
                token_key=key,
                issued_at=datetime(2027, 1, 15, 3, 0, tzinfo=UTC),
            )
        record = make_record(
            APP,
            efs=EfsMount(file_system_id=FS, mount_point=MOUNT_POINT),
            current_instance_id=current,
            state=state,
            generation=generation,
            permit=permit,
        )
        self.dynamodb.put_item(TableName=TABLE, Item=to_item(record))

    def gate(self, config: GateConfig | None = None) -> BootGate:
        return BootGate(
            config or self.config, self.host, self.dynamodb, self.sfn, sleep=self.time.sleep, clock=self.time.clock
        )

    def sfn_calls(self) -> list[tuple[str, dict[str, Any]]]:
        return [(e[0], e[1]) for e in self.journal if str(e[0]).startswith("send_task_")]


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        aws_client("dynamodb").create_table(
            TableName=TABLE,
            AttributeDefinitions=[{"AttributeName": "app", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "app", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield World()


@pytest.fixture(autouse=True)
def _restore_gate_logger() -> Iterator[None]:
    """main() attaches a stdout handler to the gate's logger; leave the logger as found."""
    gate_log = logging.getLogger("swr-boot-gate")
    handlers, level = list(gate_log.handlers), gate_log.level
    yield
    gate_log.handlers[:] = handlers
    gate_log.setLevel(level)


def decisions(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The <decision> word of each 'swr-boot-gate: <decision> ...' line."""
    return [r.getMessage().split()[1] for r in caplog.records if r.getMessage().startswith("swr-boot-gate: ")]


# --- the happy path ----------------------------------------------------------------------
def test_permit_for_me_and_my_generation_mounts_then_starts_then_reports_success(world: World) -> None:
    world.store(permit_for=ME)

    outcome = world.gate().run()

    assert outcome is GateOutcome.STARTED and outcome.exit_code == 0
    assert [e[0] for e in world.journal] == [
        "identity",
        "send_task_heartbeat",
        "mount",
        "start",
        "send_task_success",
    ]
    assert ("mount", FS, MOUNT_POINT, REGION) in world.journal
    _, success = world.sfn_calls()[-1]
    assert success["taskToken"] == TOKEN
    output = json.loads(success["output"])
    assert output == {
        "instance_id": ME,
        "az": "ap-northeast-1c",
        "generation": GENERATION,
        "file_system_id": FS,
        "mount_point": MOUNT_POINT,
        "mounted_at": datetime.fromtimestamp(START, tz=UTC).isoformat(),
        "started_at": datetime.fromtimestamp(START, tz=UTC).isoformat(),
    }
    # The workflow reads the token's output as $.boot; it must parse as its BootReport.
    assert BootReport.model_validate(output).instance_id == ME


def test_a_permit_issued_while_the_gate_waits_is_picked_up_on_the_next_poll(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="swr-boot-gate")
    world.store()  # SWITCHING, old instance not yet confirmed isolated: no permit

    def workflow_issues_permit(sleeps: int) -> None:
        if sleeps == 4:
            world.store(permit_for=ME)

    world.time.on_sleep = workflow_issues_permit

    assert world.gate().run() is GateOutcome.STARTED
    assert world.time.sleeps == [5.0] * 4  # the default poll interval
    assert decisions(caplog).count("waiting") == 1  # logged once, not once per poll
    assert world.host.calls()[-2:] == ["start", "send_task_success"]


# --- never starting without a permit -----------------------------------------------------
def test_no_permit_waits_until_the_timeout_never_mounts_or_starts_and_powers_off(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="swr-boot-gate")
    world.store()
    config = GateConfig(app=APP, table_name=TABLE, region=REGION, poll_seconds=5, permit_timeout_seconds=60)

    outcome = world.gate(config).run()

    assert outcome is GateOutcome.NO_PERMIT and outcome.exit_code == 5
    # Nobody will permit it now: it does not stay up holding an address (and the chance of a
    # mistaken permit later); a resumed failover launches what it needs.
    assert world.host.calls() == ["identity", "self_fence"]
    assert world.time.now - START == 60
    assert len(world.time.sleeps) == 12
    assert decisions(caplog)[-2:] == ["no-permit", "self-fence"]


def test_missing_record_is_waited_for_then_times_out(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="swr-boot-gate")
    config = GateConfig(app=APP, table_name=TABLE, region=REGION, permit_timeout_seconds=30)

    assert world.gate(config).run() is GateOutcome.NO_PERMIT
    assert world.host.calls() == ["identity", "self_fence"]
    waiting = [r.getMessage() for r in caplog.records if "swr-boot-gate: waiting " in r.getMessage()]
    assert len(waiting) == 1 and "no record for the application" in waiting[0]


def test_permit_for_another_instance_never_starts_this_one(world: World) -> None:
    world.store(permit_for=OTHER)
    config = GateConfig(app=APP, table_name=TABLE, region=REGION, permit_timeout_seconds=120)

    outcome = world.gate(config).run()

    assert outcome is GateOutcome.NO_PERMIT
    assert world.host.calls() == ["identity", "self_fence"]  # no mount, no start, no token used
    assert world.time.now - START == 120


def test_a_permit_for_me_whose_token_i_cannot_read_never_starts_this_instance(world: World) -> None:
    # The token item is readable only with the permitted instance's credentials; a gate that
    # cannot read it (not that instance, or the item gone) waits, and never mounts.
    world.store(permit_for=ME)
    world.dynamodb.delete_item(TableName=TABLE, Key={"app": {"S": PermitToken.key_for(APP, "AROAINSTANCEROLE", ME)}})
    config = GateConfig(app=APP, table_name=TABLE, region=REGION, permit_timeout_seconds=60)

    outcome = world.gate(config).run()

    assert outcome is GateOutcome.NO_PERMIT
    assert world.host.calls() == ["identity", "self_fence"] and world.sfn_calls() == []


def test_unreadable_table_fails_closed(world: World) -> None:
    config = GateConfig(app=APP, table_name="no-such-table", region=REGION, permit_timeout_seconds=20)

    assert world.gate(config).run() is GateOutcome.NO_PERMIT
    assert world.host.calls() == ["identity", "self_fence"]


# --- superseded and withdrawn ------------------------------------------------------------
def test_stale_generation_self_fences_and_never_mounts(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="swr-boot-gate")
    # A rollback moved the application to generation 4; this instance was launched for 3.
    world.store(generation=4, permit_for=OTHER)

    outcome = world.gate().run()

    assert outcome is GateOutcome.STALE_GENERATION and outcome.exit_code == 3
    assert world.host.calls() == ["identity", "self_fence"]
    assert "generation 4" in world.journal[-1][1]
    assert world.sfn_calls() == []
    assert "stale-generation" in decisions(caplog)
    line = next(r.getMessage() for r in caplog.records if "stale-generation" in r.getMessage())
    assert f"app={APP} instance={ME} generation={GENERATION} reason=" in line


def test_permit_withdrawn_between_mount_and_start_does_not_start(world: World) -> None:
    world.store(permit_for=ME)
    # The workflow timed out while EFS was mounting and rolled back: permit gone, generation 4.
    world.host.after_mount = lambda: world.store(generation=4)

    outcome = world.gate().run()

    assert outcome is GateOutcome.STALE_GENERATION
    assert world.host.calls() == ["identity", "send_task_heartbeat", "mount", "self_fence", "send_task_failure"]
    assert "start" not in world.host.calls()
    assert not any(name == "send_task_success" for name, _ in world.sfn_calls())


def test_permit_reissued_to_another_instance_during_mount_does_not_start(world: World) -> None:
    world.store(permit_for=ME)
    world.host.after_mount = lambda: world.store(permit_for=OTHER, token="token-for-other")

    assert world.gate().run() is GateOutcome.STALE_GENERATION
    assert "start" not in world.host.calls()


# --- failures reported to the workflow ---------------------------------------------------
def test_mount_failure_reports_boot_gate_failed_and_never_starts(world: World) -> None:
    world.store(permit_for=ME)
    world.host.mount_error = OSError(f"mount.nfs4: Connection timed out ({FS}.efs.{REGION}.amazonaws.com)")

    outcome = world.gate().run()

    assert outcome is GateOutcome.MOUNT_FAILED and outcome.exit_code == 4
    assert world.host.calls() == ["identity", "send_task_heartbeat", "mount", "send_task_failure"]
    failure = world.sfn_calls()[-1][1]
    assert failure["taskToken"] == TOKEN
    assert failure["error"] == BOOT_GATE_FAILED == "BootGateFailed"
    assert "Connection timed out" in failure["cause"] and FS in failure["cause"]


def test_start_failure_reports_boot_gate_failed(world: World) -> None:
    world.store(permit_for=ME)
    world.host.start_error = RuntimeError("hvcm: userApplication app1 could not come Online")

    outcome = world.gate().run()

    assert outcome is GateOutcome.START_FAILED and outcome.exit_code == 6
    assert world.host.calls() == ["identity", "send_task_heartbeat", "mount", "start", "send_task_failure"]
    assert world.sfn_calls()[-1][1]["error"] == "BootGateFailed"
    assert "could not come Online" in world.sfn_calls()[-1][1]["cause"]


def test_workflow_that_gave_up_before_mount_gets_a_self_fenced_instance(world: World) -> None:
    world.store(permit_for=ME)
    world.sfn.errors["send_task_heartbeat"] = "TaskTimedOut"

    outcome = world.gate().run()

    assert outcome is GateOutcome.ABANDONED and outcome.exit_code == 3
    assert world.host.calls() == ["identity", "send_task_heartbeat", "self_fence"]


def test_workflow_that_gave_up_by_the_time_of_success_gets_a_self_fenced_instance(world: World) -> None:
    world.store(permit_for=ME)
    world.sfn.errors["send_task_success"] = "InvalidToken"

    assert world.gate().run() is GateOutcome.ABANDONED
    assert world.host.calls()[-3:] == ["start", "send_task_success", "self_fence"]
    assert "InvalidToken" in world.journal[-1][1]


def test_a_throttled_heartbeat_is_retried_and_does_not_stop_the_start(world: World) -> None:
    world.store(permit_for=ME)
    world.sfn.errors["send_task_heartbeat"] = "ThrottlingException"

    assert world.gate().run() is GateOutcome.STARTED
    # Three attempts before mounting; none got through, so one is still due before starting.
    heartbeats = ["send_task_heartbeat"] * 3
    assert world.host.calls() == ["identity", *heartbeats, "mount", *heartbeats, "start", "send_task_success"]


# --- identity ----------------------------------------------------------------------------
def test_instance_tagged_for_another_app_is_refused(world: World) -> None:
    world.store(permit_for=ME)
    world.host.me = Identity(instance_id=ME, az="ap-northeast-1c", region=REGION, app_tag="payroll", generation=3)

    outcome = world.gate().run()

    assert outcome is GateOutcome.REFUSED and outcome.exit_code == 7
    assert world.host.calls() == ["identity"]


def test_instance_without_identity_is_refused(world: World) -> None:
    world.store(permit_for=ME)
    world.host.identity_error = IdentityError("instance has no swr:generation tag in its metadata")

    assert world.gate().run() is GateOutcome.REFUSED
    assert world.host.calls() == ["identity"]


# --- the rules, as a table ---------------------------------------------------------------
def _view(generation: int, permit: PermitView | None) -> RecordView:
    return RecordView(APP, "SWITCHING", generation, FS, MOUNT_POINT, permit)


def _permit(instance_id: str, generation: int) -> PermitView:
    return PermitView(generation, instance_id, TOKEN, "2027-01-15T03:00:00+00:00")


@pytest.mark.parametrize(
    ("record", "verdict"),
    [
        (None, Verdict.WAIT),
        (_view(3, None), Verdict.WAIT),
        (_view(3, _permit(ME, 3)), Verdict.PROCEED),
        (_view(3, _permit(OTHER, 3)), Verdict.WAIT),
        (_view(3, _permit(ME, 2)), Verdict.WAIT),
        (_view(2, _permit(ME, 2)), Verdict.WAIT),  # record behind this instance: not yet
        (_view(4, None), Verdict.STALE),
        (_view(4, _permit(ME, 4)), Verdict.STALE),  # a newer generation wins over any permit
    ],
)
def test_decision_rules(record: RecordView | None, verdict: Verdict) -> None:
    me = Identity(instance_id=ME, az="ap-northeast-1c", region=REGION, app_tag=APP, generation=3)
    assert decide(record, me).verdict is verdict


# --- configuration and the command line --------------------------------------------------
def test_bad_config_exits_2_with_a_clear_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "hooks.json"
    config.write_text(json.dumps({"app": APP}))

    assert main(["--config", str(config)]) == 2

    out = capsys.readouterr().out
    assert "bad-config" in out and "missing configuration: table_name" in out and "SWR_TABLE_NAME" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        ("{not json", "not readable JSON"),
        ("[1, 2]", "must hold a JSON object"),
        (json.dumps({"app": APP, "table_name": TABLE, "poll_seconds": "soon"}), "poll_seconds must be a number"),
        (json.dumps({"app": "bad app!", "table_name": TABLE}), "app must be an application name"),
    ],
)
def test_invalid_config_files_are_rejected(tmp_path: Path, content: str | None, message: str) -> None:
    config = tmp_path / "hooks.json"
    if content is not None:
        config.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_config(config, environ={})


def test_bad_arguments_exit_2() -> None:
    assert main(["--no-such-flag"]) == 2


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    config = tmp_path / "hooks.json"
    config.write_text(
        json.dumps(
            {
                "app": "from-file",
                "table_name": "t-file",
                "region": "eu-west-1",
                "workload_command": ["hvcm", "-a"],
                "event_bus_name": "default",  # the fault notifier's key: ignored here
            }
        )
    )
    loaded = load_config(
        config,
        environ={"SWR_APP": APP, "SWR_TABLE_NAME": TABLE, "AWS_REGION": REGION, "SWR_POLL_SECONDS": "2.5"},
    )
    assert (loaded.app, loaded.table_name, loaded.region, loaded.poll_seconds) == (APP, TABLE, REGION, 2.5)
    assert loaded.workload_command == ("hvcm", "-a")
    assert (loaded.permit_timeout_seconds, loaded.heartbeat_seconds) == (900.0, 60.0)
    assert loaded.self_fence_command == ("systemctl", "poweroff")


def test_main_runs_the_gate_and_exits_with_its_code(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "hooks.json"
    config.write_text(json.dumps({"app": APP, "table_name": TABLE, "region": REGION}))
    monkeypatch.setattr(boot_gate, "LinuxHost", lambda **_: world.host)
    monkeypatch.setattr(boot_gate, "_clients", lambda region: (world.dynamodb, world.sfn))
    monkeypatch.setattr(boot_gate.time, "sleep", lambda seconds: pytest.fail("--once must not sleep"))

    world.store()
    assert main(["--config", str(config), "--once"]) == 5  # one read, no permit: exit at once
    world.store(permit_for=ME)
    assert main(["--config", str(config), "--once"]) == 0
    assert world.host.calls()[-2:] == ["start", "send_task_success"]


# --- the real host: IMDSv2 and mount(8) --------------------------------------------------
class FakeImds:
    """An HTTP opener standing in for 169.254.169.254."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.failures: list[Exception] = []

    def __call__(self, request: urllib.request.Request, timeout: float) -> bytes:
        headers = {k.lower(): v for k, v in request.header_items()}
        self.requests.append((request.get_method(), request.full_url, headers))
        assert timeout <= 5, "IMDS calls must time out quickly"
        if self.failures:
            raise self.failures.pop(0)
        path = request.full_url.removeprefix("http://169.254.169.254/latest/")
        if request.get_method() == "PUT":
            assert path == "api/token"
            assert headers["x-aws-ec2-metadata-token-ttl-seconds"] == "21600"
            return b"imds-session-token"
        assert headers.get("x-aws-ec2-metadata-token") == "imds-session-token", "IMDSv1 request"
        if path not in self.values:
            raise urllib.error.HTTPError(request.full_url, 404, "Not Found", None, None)  # type: ignore[arg-type]
        return self.values[path].encode()


IMDS_VALUES = {
    "meta-data/instance-id": ME,
    "meta-data/placement/availability-zone": "ap-northeast-1c",
    "meta-data/placement/region": REGION,
    "meta-data/tags/instance/swr:app": APP,
    "meta-data/tags/instance/swr:generation": "3",
}


def test_identity_comes_from_imdsv2_token_then_gets() -> None:
    imds = FakeImds(IMDS_VALUES)

    identity = read_identity(ImdsClient(imds, sleep=lambda _: None))

    assert identity == Identity(instance_id=ME, az="ap-northeast-1c", region=REGION, app_tag=APP, generation=3)
    methods = [method for method, _, _ in imds.requests]
    assert methods == ["PUT", "GET", "GET", "GET", "GET", "GET"]  # one token, reused
    assert imds.requests[0][1] == "http://169.254.169.254/latest/api/token"
    assert imds.requests[-1][1] == "http://169.254.169.254/latest/meta-data/tags/instance/swr:generation"


def test_imds_is_retried_after_a_transient_failure() -> None:
    imds = FakeImds(IMDS_VALUES)
    imds.failures = [urllib.error.URLError("timed out")]  # the token PUT fails once
    slept: list[float] = []

    assert read_identity(ImdsClient(imds, sleep=slept.append)).instance_id == ME
    assert len(slept) == 1


def test_imds_that_stays_down_is_an_error() -> None:
    imds = FakeImds(IMDS_VALUES)
    imds.failures = [urllib.error.URLError("no route to host")] * 3

    with pytest.raises(ImdsError, match="after 3 attempts"):
        ImdsClient(imds, sleep=lambda _: None).get("meta-data/instance-id")


def test_instance_without_the_generation_tag_has_no_identity() -> None:
    values = {k: v for k, v in IMDS_VALUES.items() if not k.endswith("swr:generation")}

    with pytest.raises(IdentityError, match="no swr:generation tag"):
        read_identity(ImdsClient(FakeImds(values), sleep=lambda _: None))


class FakeRunner:
    def __init__(self, mounts: Path, returncode: int = 0) -> None:
        self.mounts = mounts
        self.returncode = returncode
        self.commands: list[list[str]] = []

    def __call__(self, argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
        self.commands.append(list(argv))
        if argv[0] == "mount" and self.returncode == 0:
            with self.mounts.open("a") as handle:
                handle.write(f"{argv[-2]} {argv[-1]} nfs4 rw,relatime 0 0\n")
        stderr = "mount error(110): Connection timed out" if self.returncode else ""
        return subprocess.CompletedProcess(list(argv), self.returncode, "", stderr)


@pytest.fixture
def linux(tmp_path: Path) -> tuple[LinuxHost, FakeRunner, Path]:
    mounts = tmp_path / "mounts"
    mounts.write_text("/dev/nvme0n1p1 / xfs rw 0 0\n")
    runner = FakeRunner(mounts)
    host = LinuxHost(
        workload_command=["hvcm", "-a"],
        run=runner,
        mounts_file=mounts,
        efs_helper=tmp_path / "no-mount.efs",
    )
    return host, runner, tmp_path / "mnt" / "swr"


def test_linux_host_without_efs_utils_refuses_to_mount_rather_than_fall_back_to_plain_nfs(
    linux: tuple[LinuxHost, FakeRunner, Path],
) -> None:
    host, runner, mount_point = linux

    with pytest.raises(OSError, match="only with TLS and IAM through amazon-efs-utils"):
        host.mount_efs(FS, str(mount_point), REGION)

    assert runner.commands == []
    assert mounted_at(str(mount_point), host.mounts_file) is None


def test_linux_host_uses_the_efs_mount_helper_with_tls_and_iam(
    linux: tuple[LinuxHost, FakeRunner, Path], tmp_path: Path
) -> None:
    host, runner, mount_point = linux
    host.efs_helper = tmp_path / "mount.efs"
    host.efs_helper.touch()

    host.mount_efs(FS, str(mount_point), REGION)
    host.mount_efs(FS, str(mount_point), REGION)  # a restarted unit finds it mounted

    assert runner.commands == [["mount", "-t", "efs", "-o", "tls,iam", f"{FS}:/", str(mount_point)]]


def test_linux_host_reports_a_failed_mount_and_refuses_a_foreign_one(
    linux: tuple[LinuxHost, FakeRunner, Path], tmp_path: Path
) -> None:
    host, runner, mount_point = linux
    host.efs_helper = tmp_path / "mount.efs"
    host.efs_helper.touch()
    runner.returncode = 32
    with pytest.raises(OSError, match="exit 32"):
        host.mount_efs(FS, str(mount_point), REGION)

    with host.mounts_file.open("a") as handle:
        handle.write(f"/dev/nvme1n1 {mount_point} xfs rw 0 0\n")
    with pytest.raises(OSError, match="already has /dev/nvme1n1"):
        host.mount_efs(FS, str(mount_point), REGION)


def test_linux_host_starts_the_configured_command_and_fences_with_the_configured_one(
    linux: tuple[LinuxHost, FakeRunner, Path],
) -> None:
    host, runner, _ = linux
    host.start_workload()
    host.self_fence("stale generation")
    assert runner.commands == [["hvcm", "-a"], ["systemctl", "poweroff"]]

    quiet = LinuxHost(run=runner, self_fence_command=())
    quiet.start_workload()  # no command: RMS's own unit starts it
    quiet.self_fence("test")  # fencing disabled: logs only
    assert len(runner.commands) == 2


def test_a_reboot_of_the_current_instance_resumes_without_a_failover(world: World) -> None:
    # After a failover the record names this instance as current in NORMAL: a reboot must
    # bring the workload back, not fence it for answering a long-finished task token.
    world.store(state=AppState.NORMAL, current=ME, permit_for=ME)

    outcome = world.gate().run()

    assert outcome is GateOutcome.STARTED
    assert world.host.calls() == ["identity", "mount", "start"]
    assert world.sfn_calls() == []


def test_the_old_instance_rebooting_during_a_failover_does_not_resume(world: World) -> None:
    # Admit moved the application on to a new generation: the record still names this
    # instance as current, but its generation is superseded, so it fences itself.
    world.store(state=AppState.SWITCHING, current=ME, generation=GENERATION + 1)

    assert world.gate().run() is GateOutcome.STALE_GENERATION
    assert "start" not in world.host.calls()
