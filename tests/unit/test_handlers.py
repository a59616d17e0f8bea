"""The Lambda shells: parse, call the logic, return JSON; errors keep their names."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import pytest

import handlers.admit
import handlers.check_replacement
import handlers.release_fences
from handlers import shell
from handlers.core.errors import MalformedTrigger, RecordNotFound
from handlers.core.record_store import RecordStore
from handlers.shell import StepInputInvalid
from tests.helpers.records import make_record

EXECUTION = "arn:aws:states:ap-northeast-1:123456789012:execution:swr-failover:drill-1"


@dataclass
class Context:
    function_name: str = "swr-admit"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:ap-northeast-1:123456789012:function:swr-admit"
    memory_limit_in_mb: int = 256
    aws_request_id: str = "req-1"
    log_group_name: str = "/aws/lambda/swr-admit"
    log_stream_name: str = "stream"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def test_admit_returns_the_admission_as_json(store: RecordStore):
    store.create(make_record())
    result = handlers.admit.handler(
        {"trigger": {"kind": "drill", "app": "demo"}, "execution": EXECUTION, "execution_name": "drill-1"}, Context()
    )
    assert result["decision"] == "proceed"
    assert result["plan"]["generation"] == 1 and result["plan"]["old_instance_id"] == "i-old"


def test_a_malformed_trigger_raises_the_error_the_asl_catches_by_name(store: RecordStore):
    with pytest.raises(MalformedTrigger):
        handlers.admit.handler({"trigger": {"nonsense": 1}, "execution": EXECUTION, "execution_name": "x"}, Context())
    assert store.get("demo") is None


def test_a_step_handed_a_document_it_cannot_read_says_which_and_why(store: RecordStore):
    with pytest.raises(StepInputInvalid, match="CheckReplacement: input does not match ReplacementInput"):
        handlers.check_replacement.handler({"app": "demo", "execution": EXECUTION}, Context())


def test_a_malformed_permit_request_names_what_is_wrong_but_never_the_task_token(store: RecordStore):
    import handlers.issue_permit

    token = "AQCEAAAAKgAAAAMAAAAA-secret-task-token"
    with pytest.raises(StepInputInvalid) as raised:
        handlers.issue_permit.handler({"app": "demo", "execution": EXECUTION, "task_token": token}, Context())
    assert "input does not match PermitInput" in str(raised.value)
    assert token not in str(raised.value)


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_a_step_names_itself_in_its_logs_and_metrics_as_the_workflow_does(
    store: RecordStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    # release_fences runs the step ReleaseFences (the ASL's ReleaseFences and ReleaseOldFences
    # states): its log lines and metrics say ReleaseFences, never the module's name.
    log = io.StringIO()
    monkeypatch.setattr(shell.logger.registered_handler, "stream", log)
    with pytest.raises(RecordNotFound):
        handlers.release_fences.handler({"app": "demo", "execution": EXECUTION}, Context())

    (failed,) = [line for line in json_lines(log.getvalue()) if line["message"] == "step failed"]
    assert failed["step"] == "ReleaseFences"
    assert failed["error"] == "RecordNotFound"
    (emf,) = [document for document in json_lines(capsys.readouterr().out) if "_aws" in document]
    (directive,) = emf["_aws"]["CloudWatchMetrics"]
    assert directive["Dimensions"] == [["step", "service"]]
    assert {metric["Name"] for metric in directive["Metrics"]} == {"StepInvocations", "StepErrors"}
    assert emf["step"] == "ReleaseFences"
