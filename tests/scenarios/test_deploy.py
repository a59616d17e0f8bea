"""`swr deploy`: package the SAM template, transform it locally and deploy it through a
CloudFormation change set, against moto (in-process, and over HTTP for the CLI)."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from swr import cli, deploy
from swr.cli.deploy import event_line
from tests.helpers.aws import client as aws_client

REGION = "ap-northeast-1"
ACCOUNT = "123456789012"  # moto's
BUCKET = f"swr-artifacts-{ACCOUNT}-{REGION}"
STACK = "swr-test"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "deploy"
TEMPLATE = FIXTURES / "template.yaml"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _change_set_outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto 5.2.5 builds a stack's Outputs from the template it had when the change set was
    created (none, for a new stack) and never again: after executing a change set, read
    them from the template it applied, as CloudFormation does. The emulator needs the same
    patch (17, in swr/emulator/moto_bridge/cloudformation.py)."""
    from moto.cloudformation.models import CloudFormationBackend

    original = CloudFormationBackend.execute_change_set

    def execute_change_set(self: Any, change_set_name: str, stack_name: str | None = None) -> None:
        original(self, change_set_name, stack_name)
        stack = self.stacks[self.describe_change_set(change_set_name).stack_id]
        stack._parse_template()
        stack.output_map = stack._create_output_map()

    monkeypatch.setattr(CloudFormationBackend, "execute_change_set", execute_change_set)


@dataclass
class Aws:
    s3: Any
    cloudformation: Any
    lambda_: Any
    sqs: Any
    lines: list[str] = field(default_factory=list)
    shown: list[Sequence[deploy.Change]] = field(default_factory=list)
    followed: list[deploy.StackEvent] = field(default_factory=list)

    def deploy(
        self, template: Path = TEMPLATE, parameters: dict[str, str] | None = None, *, answer: bool = True
    ) -> deploy.DeployResult:
        """What `swr deploy` does, with the answer to the confirmation given."""
        self.lines.clear()
        self.followed.clear()
        parameters = parameters or {}
        deploy.ensure_artifact_bucket(self.s3, BUCKET, REGION, ACCOUNT, self.lines.append)
        packaged = deploy.package(template, BUCKET, "swr", self.s3)
        body = json.dumps(deploy.transform(packaged, parameters, REGION, ACCOUNT))

        def confirm(changes: Sequence[deploy.Change]) -> bool:
            self.shown.append(changes)
            return answer

        return deploy.deploy(
            self.cloudformation,
            self.s3,
            STACK,
            body,
            parameters,
            confirm=confirm,
            progress=self.lines.append,
            on_event=self.followed.append,
            bucket=BUCKET,
            poll_seconds=0.01,
            timeout_seconds=30,
        )

    def stack(self) -> dict[str, Any]:
        return dict(self.cloudformation.describe_stacks(StackName=STACK)["Stacks"][0])

    def events(self) -> list[dict[str, Any]]:
        return list(self.cloudformation.describe_stack_events(StackName=STACK)["StackEvents"])

    def open_change_sets(self) -> list[dict[str, Any]]:
        summaries = self.cloudformation.list_change_sets(StackName=STACK)["Summaries"]
        return [s for s in summaries if s["ExecutionStatus"] != "EXECUTE_COMPLETE"]


@pytest.fixture
def aws() -> Iterator[Aws]:
    with mock_aws():
        yield Aws(
            s3=aws_client("s3"),
            cloudformation=aws_client("cloudformation"),
            lambda_=aws_client("lambda"),
            sqs=aws_client("sqs"),
        )


def rows(changes: Sequence[deploy.Change], action: str) -> set[str]:
    """The logical ids of one action in a change set put to the question."""
    return {c.logical_id for c in changes if c.action == action}


def own_copy(tmp_path: Path) -> Path:
    """The fixture template with its own copy of the handlers, to change the code."""
    code = tmp_path / "code"
    shutil.copytree(ROOT / "handlers", code / "handlers", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(FIXTURES / "workflow.asl.json", tmp_path / "workflow.asl.json")
    text = TEMPLATE.read_text().replace("CodeUri: ../../../", "CodeUri: code/")
    (tmp_path / "template.yaml").write_text(text)
    return tmp_path / "template.yaml"


def test_first_deploy_creates_the_stack_from_a_change_set_it_shows(aws: Aws) -> None:
    result = aws.deploy()

    assert result.outcome == "created"
    assert aws.stack()["StackStatus"] == "CREATE_COMPLETE"
    assert {"AdmitFunction", "AdmitFunctionRole", "Workflow", "WorkflowRole", "Queue"} <= rows(aws.shown[0], "Add")
    assert any(e.status == "CREATE_COMPLETE" and e.resource_type == "AWS::CloudFormation::Stack" for e in aws.followed)
    # The function runs the zip package() uploaded: its key is the zip's SHA-256.
    function = aws.lambda_.get_function(FunctionName=result.outputs["FunctionName"])
    assert function["Configuration"]["Handler"] == "handlers.admit.handler"
    key = function["Code"]["Location"].rsplit("/", 2)[-2:]
    assert key[0] == "swr" and key[1].endswith(".zip")
    digest = key[1].removesuffix(".zip")
    assert function["Configuration"]["CodeSha256"] == base64.b64encode(bytes.fromhex(digest)).decode()
    queue = aws.sqs.get_queue_attributes(QueueUrl=result.outputs["QueueUrl"], AttributeNames=["VisibilityTimeout"])
    assert queue["Attributes"]["VisibilityTimeout"] == "30"


def test_artifact_bucket_is_private_encrypted_and_versioned(aws: Aws) -> None:
    aws.deploy()

    block = aws.s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    rules = aws.s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert aws.s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"


def test_second_deploy_without_changes_changes_nothing(aws: Aws) -> None:
    first = aws.deploy()
    events = aws.events()

    second = aws.deploy()

    assert second.outcome == "no changes"
    assert any(line.startswith("no changes") for line in aws.lines)
    assert aws.events() == events
    assert aws.open_change_sets() == []
    assert second.outputs == first.outputs


def test_a_code_change_modifies_the_function(aws: Aws, tmp_path: Path) -> None:
    template = own_copy(tmp_path)
    first = aws.deploy(template)
    before = aws.lambda_.get_function(FunctionName=first.outputs["FunctionName"])

    admit = tmp_path / "code" / "handlers" / "admit.py"
    admit.write_text(admit.read_text() + "\n# changed\n")
    result = aws.deploy(template)

    assert result.outcome == "updated"
    assert [(c.action, c.logical_id) for c in aws.shown[-1]] == [("Modify", "AdmitFunction")]
    after = aws.lambda_.get_function(FunctionName=result.outputs["FunctionName"])
    assert after["Configuration"]["CodeSha256"] != before["Configuration"]["CodeSha256"]


def test_a_parameter_change_updates_and_later_deploys_keep_it(aws: Aws) -> None:
    aws.deploy()

    changed = aws.deploy(parameters={"QueueVisibility": "60"})

    assert changed.outcome == "updated"
    assert aws.stack()["Parameters"] == [{"ParameterKey": "QueueVisibility", "ParameterValue": "60"}]
    queue = aws.sqs.get_queue_attributes(QueueUrl=changed.outputs["QueueUrl"], AttributeNames=["VisibilityTimeout"])
    assert queue["Attributes"]["VisibilityTimeout"] == "60"
    # A deploy that does not name the parameter keeps the value an earlier one set.
    assert aws.deploy().outcome == "no changes"
    assert aws.stack()["Parameters"] == [{"ParameterKey": "QueueVisibility", "ParameterValue": "60"}]


def test_an_unknown_or_missing_parameter_is_refused_before_a_change_set(aws: Aws) -> None:
    with pytest.raises(deploy.TemplateInvalid, match="no parameter Nope; it has QueueVisibility"):
        aws.deploy(parameters={"Nope": "1"})

    body = json.dumps({"Parameters": {"AppName": {"Type": "String"}}, "Resources": {"Q": {"Type": "AWS::SQS::Queue"}}})
    with pytest.raises(deploy.TemplateInvalid, match="no value for parameter AppName"):
        deploy.deploy(aws.cloudformation, aws.s3, STACK, body, {}, confirm=lambda c: True, progress=print)
    assert aws.cloudformation.describe_stacks()["Stacks"] == []


def test_declining_a_new_stack_leaves_nothing_behind(aws: Aws) -> None:
    result = aws.deploy(answer=False)

    assert result.outcome == "declined"
    assert rows(aws.shown[-1], "Add")  # it was put to the question
    assert any(line.startswith("not deployed") for line in aws.lines)
    with pytest.raises(ClientError, match="does not exist"):
        aws.stack()
    assert aws.lambda_.list_functions()["Functions"] == []


def test_declining_an_update_leaves_the_stack_as_it_was(aws: Aws) -> None:
    aws.deploy()
    stack, events = aws.stack(), aws.events()

    result = aws.deploy(parameters={"QueueVisibility": "90"}, answer=False)

    assert result.outcome == "declined"
    assert aws.stack()["Parameters"] == stack["Parameters"]
    assert aws.stack()["StackStatus"] == "CREATE_COMPLETE"
    assert aws.events() == events
    assert aws.open_change_sets() == []


def test_a_template_with_a_bad_resource_is_refused_before_anything_is_deployed(aws: Aws, tmp_path: Path) -> None:
    template = own_copy(tmp_path)
    head, outputs = template.read_text().split("\nOutputs:", 1)
    broken = "\n  Broken:\n    Type: AWS::Serverless::StateMachine\n    Properties:\n      Name: no-definition\n"
    template.write_text(f"{head}{broken}\nOutputs:{outputs}")

    with pytest.raises(deploy.TemplateInvalid) as refused:
        aws.deploy(template)

    assert "Resource with id [Broken] is invalid" in str(refused.value)
    assert "'Definition' or 'DefinitionUri'" in str(refused.value)
    assert aws.cloudformation.describe_stacks()["Stacks"] == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Resources: [1, 2]", "no Resources mapping"),
        ("Resources:\n  A: {Type: X}\n  A: {Type: Y}\n", "duplicate key 'A'"),
        ("Resources: {A: [}", "not valid YAML or JSON"),
    ],
)
def test_an_unreadable_template_is_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(text)
    with pytest.raises(deploy.TemplateInvalid, match=message):
        deploy.load_template(path)


def test_templates_read_as_cloudformation_reads_them(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(
        "Resources:\n"
        "  R:\n"
        "    Type: AWS::IAM::Policy\n"
        "    Properties:\n"
        "      PolicyDocument: {Version: 2012-10-17}\n"
        "      Name: !Sub '${AWS::StackName}-x'\n"
        "      Arn: !GetAtt Other.Arn\n"
        "      List: !Split [',', !Ref P]\n"
    )
    properties = deploy.load_template(path)["Resources"]["R"]["Properties"]
    assert properties == {
        "PolicyDocument": {"Version": "2012-10-17"},
        "Name": {"Fn::Sub": "${AWS::StackName}-x"},
        "Arn": {"Fn::GetAtt": ["Other", "Arn"]},
        "List": {"Fn::Split": [",", {"Ref": "P"}]},
    }


def test_package_is_deterministic_and_holds_only_the_handler_sources(aws: Aws, tmp_path: Path) -> None:
    def code_uri(template: dict[str, Any]) -> dict[str, str]:
        return dict(template["Resources"]["AdmitFunction"]["Properties"]["CodeUri"])

    aws.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    first = deploy.package(TEMPLATE, BUCKET, "swr", aws.s3)
    # The same sources elsewhere, newer, next to byte code and files that are not code.
    template = own_copy(tmp_path)
    handlers = tmp_path / "code" / "handlers"
    (handlers / "__pycache__").mkdir()
    (handlers / "__pycache__" / "admit.cpython-311.pyc").write_bytes(b"\0")
    (handlers / "notes.txt").write_text("not code")
    (tmp_path / "code" / "README.md").write_text("not in the zip")
    second = deploy.package(template, BUCKET, "swr", aws.s3)

    code = code_uri(first)
    assert code["Bucket"] == BUCKET and code["Key"].startswith("swr/") and code["Key"].endswith(".zip")
    assert code_uri(second) == code
    workflow = first["Resources"]["Workflow"]["Properties"]["DefinitionUri"]
    assert workflow == second["Resources"]["Workflow"]["Properties"]["DefinitionUri"]
    assert workflow["Key"].startswith("swr/") and workflow["Key"].endswith(".asl.json")
    archive = zipfile.ZipFile(io.BytesIO(aws.s3.get_object(Bucket=BUCKET, Key=code["Key"])["Body"].read()))
    names = archive.namelist()
    assert names == sorted(names)
    assert "handlers/admit.py" in names and "handlers/core/record.py" in names
    assert all(name.endswith((".py", "/py.typed")) for name in names)
    assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}

    # A py.typed marker is part of the package, and so of the zip.
    marker = handlers / "core" / "py.typed"
    marker.unlink(missing_ok=True)
    without = code_uri(deploy.package(template, BUCKET, "swr", aws.s3))
    marker.write_text("")
    with_marker = code_uri(deploy.package(template, BUCKET, "swr", aws.s3))
    assert with_marker != without
    archive = zipfile.ZipFile(io.BytesIO(aws.s3.get_object(Bucket=BUCKET, Key=with_marker["Key"])["Body"].read()))
    assert "handlers/core/py.typed" in archive.namelist()


def test_a_handler_outside_the_packaged_code_is_refused(aws: Aws, tmp_path: Path) -> None:
    template = own_copy(tmp_path)
    template.write_text(template.read_text().replace("handlers.admit.handler", "app.handler"))
    with pytest.raises(deploy.TemplateInvalid, match=r"AdmitFunction.Handler 'app.handler' is outside"):
        deploy.package(template, BUCKET, "swr", aws.s3)


def test_a_large_template_goes_through_s3(aws: Aws) -> None:
    deploy.ensure_artifact_bucket(aws.s3, BUCKET, REGION, ACCOUNT, aws.lines.append)
    template = deploy.transform(deploy.package(TEMPLATE, BUCKET, "swr", aws.s3), {}, REGION, ACCOUNT)
    template["Metadata"] = {"Padding": "x" * deploy.TEMPLATE_BODY_LIMIT}
    body = json.dumps(template)

    result = deploy.deploy(
        aws.cloudformation, aws.s3, STACK, body, {}, confirm=lambda c: True, progress=aws.lines.append, bucket=BUCKET
    )

    assert result.outcome == "created"
    keys = [o["Key"] for o in aws.s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert [k for k in keys if k.endswith(".template.json")]
    assert aws.sqs.get_queue_attributes(QueueUrl=result.outputs["QueueUrl"], AttributeNames=["All"])


# --- a failing stack, as AWS reports it (moto raises instead of rolling back) ----------------------
class FailingCloudFormation:
    """Just enough CloudFormation for one create that rolls back."""

    def __init__(self) -> None:
        self.status = "REVIEW_IN_PROGRESS"
        self.events: list[dict[str, Any]] = []
        self.polls = 0
        self.start = datetime(2025, 1, 1, tzinfo=UTC)

    def _event(self, logical_id: str, kind: str, status: str, reason: str | None = None) -> None:
        event = {
            "EventId": f"e{len(self.events)}",
            "StackName": STACK,
            "LogicalResourceId": logical_id,
            "ResourceType": kind,
            "ResourceStatus": status,
            "Timestamp": self.start + timedelta(seconds=len(self.events)),
        }
        if reason:
            event["ResourceStatusReason"] = reason
        self.events.insert(0, event)  # newest first, as CloudFormation lists them

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        if not self.events:
            raise ClientError({"Error": {"Code": "ValidationError", "Message": "does not exist"}}, "DescribeStacks")
        return {"Stacks": [{"StackName": STACK, "StackId": "id", "StackStatus": self.status}]}

    def create_change_set(self, **request: Any) -> dict[str, str]:
        self._event(STACK, "AWS::CloudFormation::Stack", "REVIEW_IN_PROGRESS", "User Initiated")
        return {"Id": "cs", "StackId": "id"}

    def describe_change_set(self, ChangeSetName: str, NextToken: str | None = None) -> dict[str, Any]:
        change = {"Action": "Add", "LogicalResourceId": "Queue", "ResourceType": "AWS::SQS::Queue"}
        return {"Status": "CREATE_COMPLETE", "Changes": [{"Type": "Resource", "ResourceChange": change}]}

    def describe_stack_events(self, StackName: str) -> dict[str, Any]:
        return {"StackEvents": list(self.events)}

    def get_paginator(self, name: str) -> Any:
        outer = self

        class Pages:
            def paginate(self, StackName: str) -> list[dict[str, Any]]:
                outer.polls += 1
                return [{"StackEvents": outer.events[:2]}, {"StackEvents": outer.events[2:]}]

        return Pages()

    def execute_change_set(self, ChangeSetName: str) -> None:
        self.status = "ROLLBACK_COMPLETE"
        self._event(STACK, "AWS::CloudFormation::Stack", "CREATE_IN_PROGRESS", "User Initiated")
        self._event("Role", "AWS::IAM::Role", "CREATE_FAILED", "Resource creation cancelled")
        self._event("Queue", "AWS::SQS::Queue", "CREATE_FAILED", "Queue name already exists")
        self._event(STACK, "AWS::CloudFormation::Stack", "ROLLBACK_IN_PROGRESS", "The following resource(s) failed")
        self._event("Queue", "AWS::SQS::Queue", "DELETE_COMPLETE")
        self._event(STACK, "AWS::CloudFormation::Stack", "ROLLBACK_COMPLETE")


def test_a_failed_change_names_the_resources_that_failed_and_why() -> None:
    cloudformation, followed = FailingCloudFormation(), []
    body = json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}})

    with pytest.raises(deploy.DeployFailed) as failed:
        deploy.deploy(
            cloudformation, None, STACK, body, {}, confirm=lambda c: True, progress=print, on_event=followed.append
        )

    assert str(failed.value) == (
        f"stack {STACK} ended ROLLBACK_COMPLETE: Queue (AWS::SQS::Queue): Queue name already exists; "
        "Role (AWS::IAM::Role): Resource creation cancelled"
    )
    events = [event_line(event) for event in followed]  # as `swr deploy` prints them
    assert all(line.startswith("  00:00") for line in events)
    # Each event once, oldest first; the REVIEW_IN_PROGRESS from before the execution not at all.
    assert [line.split()[1] for line in events] == [
        "CREATE_IN_PROGRESS",
        "CREATE_FAILED",
        "CREATE_FAILED",
        "ROLLBACK_IN_PROGRESS",
        "DELETE_COMPLETE",
        "ROLLBACK_COMPLETE",
    ]
    assert "Queue name already exists" in events[2]


def test_a_stack_that_must_be_deleted_first_is_refused() -> None:
    cloudformation = FailingCloudFormation()
    cloudformation.create_change_set()
    cloudformation.status = "ROLLBACK_COMPLETE"
    with pytest.raises(deploy.DeployFailed, match="ROLLBACK_COMPLETE: CloudFormation cannot update it; delete it"):
        deploy.deploy(cloudformation, None, STACK, "{}", {}, confirm=lambda c: True, progress=print)


# --- the command ----------------------------------------------------------------------------------
@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():  # a clean moto state, dropped afterwards; the server shares its backends
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            yield f"http://{host}:{port}"
        finally:
            server.stop()


def test_swr_deploy_against_an_endpoint(endpoint: str, capsys: pytest.CaptureFixture[str]) -> None:
    where = ["--endpoint", endpoint, "--region", REGION, "--template", str(TEMPLATE), "--stack-name", STACK]

    assert cli.main(["deploy", *where, "--yes"]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert f"creating artifact bucket {BUCKET}" in out
    assert f"packaging {TEMPLATE} into s3://{BUCKET}/swr/" in out
    assert "  ACTION  LOGICAL ID" in out and "  Add     AdmitFunction" in out  # the change set, a table
    stack_created = rf"^  \d\d:\d\d:\d\d  CREATE_COMPLETE\s+AWS::CloudFormation::Stack  {STACK}$"
    assert re.search(stack_created, out, re.MULTILINE)  # the stack events, a line each
    assert f"stack {STACK}: CREATE_COMPLETE" in out
    assert "outputs:" in out and "QueueUrl" in out

    assert cli.main(["deploy", *where, "--yes"]) == cli.EXIT_OK
    assert f"no changes: stack {STACK} is up to date" in capsys.readouterr().out

    assert cli.main(["deploy", *where, "--yes", "--parameter", "QueueVisibility=45"]) == cli.EXIT_OK
    assert f"stack {STACK}: UPDATE_COMPLETE" in capsys.readouterr().out


def test_swr_deploy_refuses_to_go_ahead_unasked(capsys: pytest.CaptureFixture[str]) -> None:
    # pytest's stdin is not a terminal: without --yes there is nobody to confirm.
    code = cli.main(["deploy", "--template", str(TEMPLATE), "--endpoint", "http://127.0.0.1:9", "--region", REGION])

    assert code == cli.EXIT_USAGE
    assert "stdin is not a terminal" in capsys.readouterr().err


def test_swr_deploy_reports_a_bad_template_as_bad_input(
    endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "template.yaml"
    bad.write_text("Transform: AWS::Serverless-2016-10-31\nResources:\n  S:\n    Type: AWS::Serverless::StateMachine\n")
    code = cli.main(["deploy", "--endpoint", endpoint, "--region", REGION, "--template", str(bad), "--yes"])

    assert code == cli.EXIT_USAGE
    assert "Resource with id [S] is invalid" in capsys.readouterr().err
