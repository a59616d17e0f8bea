"""The swr command line against a stand-in failover state machine on moto: drill, executions,
show and their errors; and the demo's flow and JSON with a stand-in emulator."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from swr import cli
from tests.helpers.aws import client as aws_client

REGION = "ap-northeast-1"
COMMANDS = (
    "demo",
    "emulator",
    "drill",
    "executions",
    "show",
    "register",
    "unregister",
    "deploy",
    "report",
    "status",
    "maintenance",
    "resume",
    "ami",
)
MACHINE = f"arn:aws:states:{REGION}:123456789012:stateMachine:swr-failover"
# No stack is deployed here: the state machine and the table are named explicitly.
WHERE = ["--region", REGION, "--state-machine-arn", MACHINE]
# Stand-in for the real workflow: "Admit" answers like the real one, a drill of "broken"
# fails with an error and cause, anything else is ignored with a reason.
DEFINITION = {
    "StartAt": "Admit",
    "States": {
        "Admit": {
            "Type": "Pass",
            "Parameters": {"app.$": "$.app", "decision": "ignore", "reason": "application is in maintenance mode"},
            "Next": "Decide",
        },
        "Decide": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.app", "StringEquals": "broken", "Next": "FailoverFailed"}],
            "Default": "Ignored",
        },
        "Ignored": {"Type": "Succeed"},
        "FailoverFailed": {"Type": "Fail", "Error": "NoCapacity", "Cause": "every allowed type refused in every AZ"},
    },
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SWR_TABLE_NAME", "swr-apps")
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):  # type: ignore[call-overload]
        dynamodb = aws_client("dynamodb")
        dynamodb.create_table(
            TableName="swr-apps",
            KeySchema=[{"AttributeName": "app", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "app", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        for app in ("demo", "broken"):
            dynamodb.put_item(TableName="swr-apps", Item={"app": {"S": app}, "state": {"S": "NORMAL"}})
        sfn = aws_client("stepfunctions")
        role = "arn:aws:iam::123456789012:role/swr-step-functions"
        machine = sfn.create_state_machine(name="swr-failover", definition=json.dumps(DEFINITION), roleArn=role)
        yield {"sfn": sfn, "state_machine_arn": machine["stateMachineArn"]}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def wait_done(sfn: Any, arn: str) -> dict[str, Any]:
    for _ in range(200):
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            return dict(described)
        time.sleep(0.02)
    raise AssertionError(f"{arn} still running")


def test_drill_starts_an_execution_with_the_drill_input(aws: dict[str, Any], capsys: pytest.CaptureFixture[str]):
    code, out, err = run(capsys, "drill", "demo", "--reason", "quarterly test", *WHERE)

    assert code == 0, err
    executions = aws["sfn"].list_executions(stateMachineArn=aws["state_machine_arn"])["executions"]
    assert len(executions) == 1
    arn = executions[0]["executionArn"]
    assert arn in out and f"swr show {arn}" in out
    name = executions[0]["name"]
    assert name.startswith("drill-demo-") and datetime.strptime(name[len("drill-demo-") :], "%Y%m%dT%H%M%SZ")
    payload = json.loads(aws["sfn"].describe_execution(executionArn=arn)["input"])
    assert payload["kind"] == "drill" and payload["app"] == "demo" and payload["reason"] == "quarterly test"
    assert payload["force"] is False and "@" in payload["requested_by"]
    assert set(payload) == {"kind", "app", "reason", "requested_by", "force"}


def test_drill_wait_shows_the_timeline_and_fails_when_not_recovered(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
):
    code, out, _ = run(capsys, "drill", "demo", "--force", "--wait", *WHERE)

    assert code == cli.EXIT_FAILED  # ignored is not a recovery
    assert "Admit" in out and "Ignored" in out
    assert "result: ignore: application is in maintenance mode" in out
    arn = aws["sfn"].list_executions(stateMachineArn=aws["state_machine_arn"])["executions"][0]["executionArn"]
    assert json.loads(aws["sfn"].describe_execution(executionArn=arn)["input"])["force"] is True


def test_drill_of_an_unknown_app_is_refused_with_the_registered_ones(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
):
    code, out, err = run(capsys, "drill", "nosuch", *WHERE)

    assert code == cli.EXIT_USAGE and out == ""
    assert "unknown application 'nosuch'" in err and "registered: broken, demo" in err
    assert "Traceback" not in err
    assert aws["sfn"].list_executions(stateMachineArn=aws["state_machine_arn"])["executions"] == []


def test_executions_lists_those_of_the_app_with_status_and_result(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
):
    sfn, machine = aws["sfn"], aws["state_machine_arn"]
    drill = json.dumps({"kind": "drill", "app": "demo"})
    mine = sfn.start_execution(stateMachineArn=machine, name="drill-demo-1", input=drill)
    other = sfn.start_execution(
        stateMachineArn=machine, name="rms-broken-1", input=json.dumps({"detail-type": "RMS Fault", "app": "broken"})
    )
    for started in (mine, other):
        wait_done(sfn, started["executionArn"])

    code, out, err = run(capsys, "executions", "demo", *WHERE)

    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["STARTED", "(UTC)", "STATUS"]
    assert len(lines) == 2 and "drill-demo-1" in lines[1] and "SUCCEEDED" in lines[1]
    assert "ignore: application is in maintenance mode" in lines[1] and "drill" in lines[1]

    code, out, _ = run(capsys, "executions", "broken", "--json", *WHERE)
    rows = json.loads(out)
    assert [r["name"] for r in rows] == ["rms-broken-1"]  # found through Admit's output in the history
    assert rows[0]["status"] == "FAILED" and rows[0]["result"].startswith("failed: NoCapacity: every allowed")


def test_executions_of_an_unknown_app_without_executions_is_an_error(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
):
    code, _, err = run(capsys, "executions", "nosuch", *WHERE)
    assert code == cli.EXIT_USAGE and "unknown application 'nosuch'" in err


def test_show_prints_the_timeline_with_error_and_cause(aws: dict[str, Any], capsys: pytest.CaptureFixture[str]):
    sfn = aws["sfn"]
    drill = json.dumps({"kind": "drill", "app": "broken"})
    started = sfn.start_execution(stateMachineArn=aws["state_machine_arn"], name="drill-broken-1", input=drill)
    arn = started["executionArn"]
    wait_done(sfn, arn)

    code, out, err = run(capsys, "show", arn)  # the region comes from the ARN

    assert code == 0, err
    assert arn in out and "trigger: drill for broken" in out
    lines = out.splitlines()
    header = lines.index(next(line for line in lines if line.split()[:2] == ["OFFSET", "STATE"]))
    step_lines = [line.split() for line in lines[header + 1 :] if line.startswith("  +")]
    assert [s[1] for s in step_lines] == ["Admit", "Decide", "FailoverFailed"]
    assert " ".join(step_lines[-1][3:]) == "failed: NoCapacity: every allowed type refused in every AZ"
    assert "  error: NoCapacity" in out and "  cause: every allowed type refused in every AZ" in out

    code, by_name, _ = run(capsys, "show", "drill-broken-1", *WHERE)  # a name within swr-failover
    assert code == 0 and by_name == out

    code, out, _ = run(capsys, "show", arn, "--json")
    timeline = json.loads(out)
    assert code == 0 and timeline["error"] == "NoCapacity" and timeline["clock"] == "wall"

    code, out, _ = run(capsys, "show", arn, "--json", "--warp", "100")  # an emulator's simulated seconds
    warped = json.loads(out)
    assert warped["clock"] == "simulated"
    assert warped["duration_seconds"] == pytest.approx(timeline["duration_seconds"] * 100, abs=0.5)
    assert warped["started_at"] == timeline["started_at"]


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("arn:aws:states:ap-northeast-1:123456789012:stateMachine:swr-failover", "not an execution ARN"),
        ("not a name", "neither an execution ARN nor an execution name"),
        ("arn:aws:states:ap-northeast-1:123456789012:execution:swr-failover:nosuch", "no such execution"),
    ],
)
def test_show_explains_a_bad_argument(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str], argument: str, message: str
):
    code, out, err = run(capsys, "show", argument, *WHERE)
    assert code == cli.EXIT_USAGE and out == "" and message in err and "Traceback" not in err


def test_a_missing_state_machine_is_explained(aws: dict[str, Any], capsys: pytest.CaptureFixture[str]):
    aws["sfn"].delete_state_machine(stateMachineArn=aws["state_machine_arn"])
    code, _, err = run(capsys, "drill", "demo", *WHERE)
    assert code == cli.EXIT_ENVIRONMENT and "no such state machine" in err


def test_without_a_stack_or_explicit_names_the_commands_say_what_to_deploy(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.delenv("SWR_TABLE_NAME")
    page = str(tmp_path / "page.html")
    commands = (["drill", "demo"], ["executions", "demo"], ["show", "drill-demo-1"], ["report", "x", "--html", page])
    for argv in commands:
        code, _, err = run(capsys, *argv, "--region", REGION, "--stack-name", "swr-billing")
        assert code == cli.EXIT_ENVIRONMENT, (argv, err)
        assert "no stack named swr-billing: deploy it first with `swr deploy`" in err


def test_an_unreachable_endpoint_is_explained(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    code, out, err = run(capsys, "executions", "demo", "--endpoint", "http://127.0.0.1:9", *WHERE)
    assert code == cli.EXIT_ENVIRONMENT and out == ""
    assert "cannot reach http://127.0.0.1:9" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["executions", "demo", "--endpoint", "127.0.0.1:5077"], "not an http(s) URL: '127.0.0.1:5077' (did you mean"),
        (["status", "--endpoint", "ftp://127.0.0.1:5077"], "not an http(s) URL: 'ftp://127.0.0.1:5077'"),
        (["executions", "demo", "--warp", "nan"], "not a finite number: nan"),
        (["executions", "demo", "--warp", "inf"], "not a finite number: inf"),
    ],
)
def test_a_bad_endpoint_or_warp_is_a_usage_error_before_anything_runs(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
):
    code = cli.main([*argv, "--region", REGION])
    err = capsys.readouterr().err
    assert code == cli.EXIT_USAGE and message in err and "Traceback" not in err


def test_status_where_no_stack_is_deployed_is_an_environment_problem(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
):
    code, out, _ = run(capsys, "status", "--region", REGION)
    assert code == cli.EXIT_ENVIRONMENT and "no swr stack at" in out and "swr deploy" in out
    code, out, _ = run(capsys, "status", "--json", "--region", REGION)
    assert code == cli.EXIT_ENVIRONMENT and out.strip() == "[]"


# --- the command line's contract: help, colour, completion, exit codes ----------------------------
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.mark.parametrize("argv", [[], *([name] for name in COMMANDS), ["ami", "refresh"]])
def test_every_command_has_typer_help_and_exits_0(argv: list[str], capsys: pytest.CaptureFixture[str]):
    code, out, _ = run(capsys, *argv, "--help")
    assert code == cli.EXIT_OK
    assert f"Usage: swr {' '.join(argv)}".rstrip() in ANSI.sub("", out)


def test_no_command_shows_the_commands_and_is_a_usage_error(capsys: pytest.CaptureFixture[str]):
    code, out, err = run(capsys)
    assert code == cli.EXIT_USAGE
    assert all(name in ANSI.sub("", out + err) for name in COMMANDS)


def a_finished_drill_of_demo(aws: dict[str, Any]) -> None:
    sfn = aws["sfn"]
    drill = json.dumps({"kind": "drill", "app": "demo"})
    started = sfn.start_execution(stateMachineArn=aws["state_machine_arn"], name="drill-demo-1", input=drill)
    wait_done(sfn, started["executionArn"])


def test_a_table_is_in_colour_only_on_a_terminal_and_reads_the_same_without(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    a_finished_drill_of_demo(aws)
    _, piped, _ = run(capsys, "executions", "demo", *WHERE)
    assert "\x1b[" not in piped  # captured stdout is not a terminal: plain text

    monkeypatch.setenv("FORCE_COLOR", "1")  # as on a terminal
    _, coloured, _ = run(capsys, "executions", "demo", *WHERE)
    assert "\x1b[32mSUCCEEDED" in coloured  # a status word in colour
    assert ANSI.sub("", coloured) == piped  # the same text, to the character

    monkeypatch.setenv("NO_COLOR", "1")
    _, uncoloured, _ = run(capsys, "executions", "demo", *WHERE)
    assert not re.search(r"\x1b\[(?:3|4|9)\d", uncoloured)  # no colour, whatever else a terminal gets
    assert ANSI.sub("", uncoloured) == piped


def test_json_is_the_same_on_a_terminal(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    a_finished_drill_of_demo(aws)
    _, piped, _ = run(capsys, "executions", "demo", "--json", *WHERE)
    monkeypatch.setenv("FORCE_COLOR", "1")
    _, terminal, _ = run(capsys, "executions", "demo", "--json", *WHERE)
    assert terminal == piped and json.loads(piped)[0]["name"] == "drill-demo-1"


def test_the_shell_completion_script_names_swr(capsys: pytest.CaptureFixture[str]):
    code, out, _ = run(capsys, "--show-completion", "bash")
    assert code == cli.EXIT_OK
    assert "_SWR_COMPLETE=complete_bash" in out and "complete -o default -F _swr_completion swr" in out


def test_an_interrupt_exits_130_with_one_line(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr("swr.ops.executions.recent_executions", interrupted)
    code, out, err = run(capsys, "executions", "demo", *WHERE)
    assert (code, out, err) == (cli.EXIT_INTERRUPTED, "", "swr executions: interrupted\n")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["drill"], "Missing argument 'app'"),
        (["drill", "demo", "--timeout", "-1"], "must be positive: -1"),
        (["demo", "--api-fault-rate", "2"], "'--api-fault-rate': Input should be less than or equal to 1"),
        (["demo", "--scenario", "meteor"], "'meteor' is not one of"),
        (["emulator", "--port", "70000"], "'--port': Input should be less than or equal to 65535"),
        (["maintenance", "demo", "sideways"], "'sideways' is not one of"),
        (["executions", "demo", "--limit", "0"], "'--limit': Input should be greater than or equal to 1"),
        (["deploy", "--parameter", "novalue"], "not KEY=VALUE: 'novalue'"),
        (["status", "no/such/app"], "not an application name: 'no/such/app'"),
        (["drill", "demo", "--no-such-option"], "No such option: --no-such-option"),
    ],
)
def test_bad_usage_exits_2_with_the_reason_and_the_help_hint(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
):
    code, out, err = run(capsys, *argv)
    assert (code, out) == (cli.EXIT_USAGE, "")
    assert message in err and f"Try 'swr {argv[0]} --help' for help." in err and "Traceback" not in err


# --- the demo, with a stand-in emulator ---------------------------------------------------------
class FakeClock:
    def now(self) -> float:
        return time.time()

    def to_simulated(self, wall: datetime) -> float:
        return wall.timestamp()


class FakeEmulator:
    """Speaks the emulator's API over moto with the stand-in state machine: inject starts a
    drill of ``app``; the report is what the real one returns."""

    region, table_name, app = REGION, "swr-apps", "demo"

    def __init__(self, recovered: bool = True) -> None:
        self.clock = FakeClock()
        self.recovered = recovered
        self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})  # type: ignore[call-overload]
        self.arn = ""

    @classmethod
    def for_scenario(cls, name: str) -> FakeEmulator:
        return cls()

    def __enter__(self) -> FakeEmulator:
        self._mock.start()
        dynamodb = self.boto3_client("dynamodb")
        dynamodb.create_table(
            TableName=self.table_name,
            KeySchema=[{"AttributeName": "app", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "app", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.put_item(
            TableName=self.table_name,
            Item={"app": {"S": "demo"}, "current_instance_id": {"S": "i-old"}, "current_az": {"S": "ap-northeast-1a"}},
        )
        self.state_machine_arn = self.boto3_client("stepfunctions").create_state_machine(
            name="swr-failover", definition=json.dumps(DEFINITION), roleArn="arn:aws:iam::123456789012:role/r"
        )["stateMachineArn"]
        return self

    def __exit__(self, *exc: object) -> None:
        self._mock.stop()

    def boto3_client(self, service: str) -> Any:
        return aws_client(service)

    def inject(self, scenario: str) -> None:
        self.arn = self.boto3_client("stepfunctions").start_execution(
            stateMachineArn=self.state_machine_arn, name="fault-1", input=json.dumps({"kind": "drill", "app": "demo"})
        )["executionArn"]

    def finished_failover(self) -> str | None:
        status = self.boto3_client("stepfunctions").describe_execution(executionArn=self.arn)["status"]
        return None if status == "RUNNING" else self.arn

    def wait_until(self, done: Callable[[], bool], timeout: float = 60.0, poll: float = 1.0) -> bool:
        # moto's interpreter runs in real time here: wall seconds stand in for simulated ones.
        deadline = time.monotonic() + 60.0
        while time.monotonic() < deadline:
            if done():
                return True
            time.sleep(0.02)
        return False

    def wait_until_settled(self, timeout: float = 60.0) -> list[str]:
        return [self.arn]

    def report(self, arn: str) -> dict[str, Any]:
        return {
            "outcome": "recovered" if self.recovered else "failed",
            "execution_arn": arn,
            "old": {"instance_id": "i-old", "az": "ap-northeast-1a"},
            "new": {"instance_id": "i-new", "az": "ap-northeast-1c"},
            "new_target_health": "healthy",
            "efs_data_preserved": self.recovered,
            "simulated_rto_seconds": 181.5,
            "invariant_violations": [],
        }


@pytest.fixture
def fake_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(cli.demo, "_load_emulator", lambda: FakeEmulator)


def test_demo_json_prints_one_object_and_nothing_else(fake_emulator: None, capsys: pytest.CaptureFixture[str]):
    code, out, _ = run(capsys, "demo", "--json", "--scenario", "az-outage")

    assert code == 0
    report = json.loads(out)  # the whole of stdout is one JSON object
    assert report["outcome"] == "recovered" and report["scenario"] == "az-outage"
    assert report["old"] == {"instance_id": "i-old", "az": "ap-northeast-1a"}
    assert report["new"]["az"] == "ap-northeast-1c" and report["new_target_health"] == "healthy"
    assert report["efs_data_preserved"] is True and report["simulated_rto_seconds"] == 181.5
    assert report["invariant_violations"] == []
    assert [s["name"] for s in report["steps"]] == ["Admit", "Decide", "Ignored"]


def test_demo_shows_progress_timeline_and_outcome(fake_emulator: None, capsys: pytest.CaptureFixture[str]):
    code, out, _ = run(capsys, "demo")

    assert code == 0
    assert "app demo registered by swr register: runs on i-old in ap-northeast-1a" in out
    assert "inject rms-fault" in out
    progress = [line.split("s  ", 1)[1] for line in out.splitlines() if line.startswith("  t+")]
    # Admit turned the trigger away: its reason, not the states after it.
    assert progress == [
        "inject rms-fault",
        "#1 started by drill event",
        "#1 Admit",
        "#1 ignore: application is in maintenance mode",
    ]
    assert "execution fault-1  SUCCEEDED" in out
    assert "outcome: RECOVERED" in out and "181.5 s simulated" in out and "safety         held" in out


def test_demo_fails_unless_the_data_came_back(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)

    class NotRecovered(FakeEmulator):
        @classmethod
        def for_scenario(cls, name: str) -> FakeEmulator:
            return cls(recovered=False)

    monkeypatch.setattr(cli.demo, "_load_emulator", lambda: NotRecovered)

    code, out, _ = run(capsys, "demo", "--json")

    assert code == cli.EXIT_FAILED and json.loads(out)["outcome"] == "failed"
