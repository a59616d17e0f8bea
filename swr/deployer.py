"""Package the SAM template, transform it locally and deploy it through a CloudFormation
change set: the logic behind ``swr deploy``, with no command-line parsing.

The same path serves AWS and the emulator. moto's CloudFormation cannot run transforms, so
the SAM transform runs here with ``samtranslator`` (the library CloudFormation's own
Serverless transform is built on) and both receive plain CloudFormation.

    template = package(Path("infra/template.yaml"), bucket, "swr", s3)
    body = json.dumps(transform(template, parameters, region, account_id))
    result = deploy(cloudformation, s3, "swr", body, parameters, confirm=..., progress=print, bucket=bucket)
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

DEFAULT_PREFIX = "swr"
CODE_PACKAGES = ("handlers",)  # what a function's zip holds: the handlers and nothing else
TEMPLATE_BODY_LIMIT = 51_200  # bytes CloudFormation takes inline; larger bodies go through S3
CAPABILITIES = ("CAPABILITY_IAM", "CAPABILITY_NAMED_IAM")
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can hold: same files, same bytes
SERVERLESS_TRANSFORM = "AWS::Serverless-2016-10-31"
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")

# Stack states: where a deploy may start from, and where it ends.
IN_PROGRESS_SUFFIX = "_IN_PROGRESS"
SUCCEEDED = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}
MUST_DELETE_FIRST = {"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED"}

Progress = Callable[[str], None]


# --- errors -------------------------------------------------------------------------------------
class DeployError(Exception):
    """Base of what can go wrong in a deploy."""


class TemplateInvalid(DeployError):
    """The template cannot be read, packaged or transformed; nothing was created."""


class DeployFailed(DeployError):
    """CloudFormation could not make the change, or the stack cannot take one now."""


class ArtifactBucketUnusable(DeployError):
    """The artifact bucket exists but is not ours, or cannot be created."""


# --- models -------------------------------------------------------------------------------------
class Change(BaseModel):
    """One row of a change set."""

    model_config = ConfigDict(frozen=True)

    action: str  # Add, Modify, Remove, Import, Dynamic
    logical_id: str
    resource_type: str
    physical_id: str | None = None
    replacement: str | None = None  # True, False, Conditional (Modify only)


class DeployResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    stack_name: str
    stack_id: str | None
    outcome: Literal["created", "updated", "no changes", "declined"]
    change_set_name: str | None
    changes: tuple[Change, ...] = ()
    stack_status: str | None = None
    outputs: dict[str, str] = {}


Confirm = Callable[[Sequence[Change]], bool]


# --- template -----------------------------------------------------------------------------------
class _CfnLoader(yaml.SafeLoader):
    """YAML as CloudFormation reads it: short-form intrinsics (!Ref, !Sub, !GetAtt a.b),
    dates left as strings (an IAM policy's Version: 2012-10-17 must stay a string), and
    duplicate keys refused instead of silently keeping the last one."""

    yaml_implicit_resolvers: ClassVar[dict[Any, list[tuple[str, Any]]]] = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


def _construct_mapping(loader: _CfnLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
        if key in mapping:
            raise TemplateInvalid(f"duplicate key {key!r} at line {key_node.start_mark.line + 1}")
        mapping[key] = loader.construct_object(value_node, deep=True)  # type: ignore[no-untyped-call]
    return mapping


def _install_intrinsics() -> None:
    from samtranslator.yaml_helper import intrinsics_multi_constructor

    _CfnLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
    _CfnLoader.add_multi_constructor("!", intrinsics_multi_constructor)


_install_intrinsics()


def load_template(path: Path) -> dict[str, Any]:
    """A CloudFormation / SAM template from a YAML or JSON file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise TemplateInvalid(f"cannot read template {path}: {error.strerror or error}") from None
    try:
        template = yaml.load(text, Loader=_CfnLoader)  # a SafeLoader subclass
    except yaml.YAMLError as error:
        raise TemplateInvalid(f"{path} is not valid YAML or JSON: {error}") from None
    if not isinstance(template, dict) or not isinstance(template.get("Resources"), dict):
        raise TemplateInvalid(f"{path} is not a CloudFormation template: no Resources mapping")
    return template


# --- package ------------------------------------------------------------------------------------
def package(template_path: Path, bucket: str, prefix: str, s3_client: Any) -> dict[str, Any]:
    """The template with every local artifact uploaded to ``s3://bucket/prefix/`` and its
    reference rewritten to ``{Bucket, Key}``: each ``AWS::Serverless::Function`` CodeUri (and
    ``Globals.Function.CodeUri``) as a deterministic zip of the handler packages, each
    ``AWS::Serverless::StateMachine`` DefinitionUri as the file itself. Keys are content
    hashes, so an unchanged artifact is not uploaded again and the template does not change.
    Paths are relative to the template's directory."""
    template = load_template(template_path)
    base = template_path.resolve().parent
    uploader = _Uploader(s3_client, bucket, prefix.strip("/"))
    global_function = (template.get("Globals") or {}).get("Function")
    if isinstance(global_function, dict) and _is_local(global_function.get("CodeUri")):
        location = _code_location(base, global_function["CodeUri"], "Globals.Function.CodeUri")
        global_function["CodeUri"] = uploader.upload(*location)
    for logical_id, resource in template["Resources"].items():
        if not isinstance(resource, dict) or not isinstance(resource.get("Properties"), dict):
            continue
        properties = resource["Properties"]
        if resource.get("Type") == "AWS::Serverless::Function":
            _check_handler(logical_id, properties)
            if _is_local(properties.get("CodeUri")):
                location = _code_location(base, properties["CodeUri"], f"{logical_id}.CodeUri")
                properties["CodeUri"] = uploader.upload(*location)
        elif resource.get("Type") == "AWS::Serverless::StateMachine" and _is_local(properties.get("DefinitionUri")):
            path = _local_path(base, properties["DefinitionUri"], f"{logical_id}.DefinitionUri")
            if not path.is_file():
                raise TemplateInvalid(f"{logical_id}.DefinitionUri: no such file {path}")
            properties["DefinitionUri"] = uploader.upload(path.read_bytes(), ".asl.json")
    return template


def code_zip(directory: Path, packages: Sequence[str] = CODE_PACKAGES) -> bytes:
    """A zip of the Python packages under ``directory``: their ``.py`` files and ``py.typed``
    markers, no ``__pycache__``. Entries are sorted and carry fixed timestamps and modes,
    so the same sources always give the same bytes (and the same S3 key)."""
    files = sorted(_code_files(directory, packages))
    if not files:
        raise TemplateInvalid(f"no Python package {' or '.join(packages)} with .py files under {directory}")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for relative in files:
            info = zipfile.ZipInfo(relative, date_time=ZIP_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, wherever the zip is built
            info.external_attr = 0o100644 << 16  # a regular file, rw-r--r--
            archive.writestr(info, (directory / relative).read_bytes())
    return buffer.getvalue()


def _code_files(directory: Path, packages: Sequence[str]) -> Iterator[str]:
    for package_name in packages:
        root = directory / package_name
        if not root.is_dir():
            continue
        for path in root.rglob("*"):
            relative = path.relative_to(directory)
            if "__pycache__" in relative.parts or not path.is_file():
                continue
            if path.suffix == ".py" or path.name == "py.typed":
                yield relative.as_posix()


def _check_handler(logical_id: str, properties: dict[str, Any]) -> None:
    # Fail before anything is uploaded if a handler lives outside the packaged code.
    handler = properties.get("Handler")
    if isinstance(handler, str) and _is_local(properties.get("CodeUri")):
        top = handler.split(".", 1)[0]
        if top not in CODE_PACKAGES:
            raise TemplateInvalid(
                f"{logical_id}.Handler {handler!r} is outside the packaged code ({', '.join(CODE_PACKAGES)})"
            )


def _is_local(uri: Any) -> bool:
    # Dicts are {Bucket, Key} or intrinsics, s3:// is already uploaded: both are left alone.
    return isinstance(uri, str) and bool(uri) and not uri.startswith("s3://")


def _local_path(base: Path, uri: str, where: str) -> Path:
    path = (base / uri).resolve()
    if not path.exists():
        raise TemplateInvalid(f"{where}: no such file or directory {path}")
    return path


def _code_location(base: Path, uri: str, where: str) -> tuple[bytes, str]:
    path = _local_path(base, uri, where)
    if not path.is_dir():
        raise TemplateInvalid(f"{where}: {path} is not a directory")
    return code_zip(path), ".zip"


class _Uploader:
    def __init__(self, s3: Any, bucket: str, prefix: str) -> None:
        self.s3, self.bucket, self.prefix = s3, bucket, prefix

    def upload(self, body: bytes, suffix: str) -> dict[str, str]:
        digest = hashlib.sha256(body).hexdigest()
        key = f"{self.prefix}/{digest}{suffix}" if self.prefix else f"{digest}{suffix}"
        put_artifact(self.s3, self.bucket, key, body)
        return {"Bucket": self.bucket, "Key": key}


def put_artifact(s3: Any, bucket: str, key: str, body: bytes) -> bool:
    """Upload unless the key exists (keys are content hashes); True when uploaded."""
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return False
    except ClientError as error:
        if _error_code(error) not in ("404", "NoSuchKey", "NotFound"):
            raise
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    return True


# --- transform ----------------------------------------------------------------------------------
class _NoManagedPolicies:
    """samtranslator knows the AWS managed policies by name from its own data and asks IAM
    only for a name it does not know. swr's template uses explicit policies, so that lookup
    is refused here rather than made against whatever endpoint we deploy to."""

    def load(self) -> dict[str, str]:
        raise TemplateInvalid(
            "the template names a managed policy samtranslator does not know (Policies: [SomeName]); "
            "name it by ARN or write the policy statements out"
        )


def transform(template: dict[str, Any], parameters: Mapping[str, str], region: str, account_id: str) -> dict[str, Any]:
    """The template with the SAM transform applied: plain CloudFormation. A template without
    the Serverless transform is returned unchanged (a copy)."""
    import boto3
    from samtranslator.metrics.metrics import DummyMetricsPublisher, Metrics
    from samtranslator.model.exceptions import ExceptionWithMessage, InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator
    from samtranslator.utils.py27hash_fix import to_py27_compatible_template, undo_mark_unicode_str_in_template

    template = json.loads(json.dumps(template))  # samtranslator edits its input in place
    transforms = template.get("Transform")
    names = transforms if isinstance(transforms, list) else [transforms] if transforms else []
    if not names:
        return template
    others = [name for name in names if name != SERVERLESS_TRANSFORM]
    if others:
        raise TemplateInvalid(
            f"only the {SERVERLESS_TRANSFORM} transform runs locally; the template also uses {others}"
        )
    values: dict[str, Any] = dict(parameters)
    values.update(
        {
            "AWS::Region": region,
            "AWS::AccountId": account_id,
            "AWS::Partition": _partition(region),
            "AWS::URLSuffix": "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com",
        }
    )
    policies = _NoManagedPolicies()
    # samtranslator counts what it does into a metrics sink and warns at exit if nobody
    # published them; a dummy publisher, published below, keeps that quiet.
    metrics = Metrics("ServerlessTransform", DummyMetricsPublisher())
    # A session carrying only the region: samtranslator reads its region_name, nothing else.
    session = boto3.session.Session(region_name=region)
    translator = Translator(None, Parser(), boto_session=session, metrics=metrics)
    # As samtranslator's own transform(): the py27 marks keep generated logical ids (hashes)
    # identical to the ones CloudFormation's transform produces.
    to_py27_compatible_template(template, values)
    try:
        translated = translator.translate(template, parameter_values=values, get_managed_policy_map=policies.load)
    except InvalidDocumentException as error:
        messages = "\n".join(f"  - {cause.message}" for cause in error.causes)
        raise TemplateInvalid(f"the SAM transform refused the template:\n{messages}") from None
    except ExceptionWithMessage as error:
        raise TemplateInvalid(f"the SAM transform refused the template: {error.message}") from None
    finally:
        metrics.publish()
    result: dict[str, Any] = undo_mark_unicode_str_in_template(translated)
    # samtranslator passes through types it does not know; CloudFormation would refuse them later.
    unknown = sorted(
        f"{logical_id} ({resource.get('Type')})"
        for logical_id, resource in (result.get("Resources") or {}).items()
        if isinstance(resource, dict) and str(resource.get("Type", "")).startswith("AWS::Serverless::")
    )
    if unknown:
        raise TemplateInvalid(f"the SAM transform does not know the resource types of {', '.join(unknown)}")
    return result


def _partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


# --- artifact bucket ----------------------------------------------------------------------------
def default_bucket_name(account_id: str, region: str) -> str:
    return f"swr-artifacts-{account_id}-{region}"


def ensure_artifact_bucket(s3: Any, bucket: str, region: str, account_id: str, progress: Progress) -> None:
    """Use the bucket if this account owns it; otherwise create it private (public access
    blocked), encrypted at rest and versioned."""
    try:
        s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=account_id)
        return
    except ClientError as error:
        code = _error_code(error)
        if code in ("403", "AccessDenied", "Forbidden"):
            raise ArtifactBucketUnusable(
                f"bucket {bucket} exists but is not this account's ({account_id}) or not readable: pass --bucket"
            ) from None
        if code not in ("404", "NoSuchBucket", "NotFound"):
            raise
    progress(f"creating artifact bucket {bucket}")
    create: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":  # the one region that refuses an explicit LocationConstraint
        create["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        s3.create_bucket(**create)
    except ClientError as error:
        if _error_code(error) == "BucketAlreadyOwnedByYou":
            return
        if _error_code(error) == "BucketAlreadyExists":
            raise ArtifactBucketUnusable(f"bucket name {bucket} is taken by another account: pass --bucket") from None
        raise
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


# --- deploy -------------------------------------------------------------------------------------
def untimed(phase: str) -> AbstractContextManager[Any]:
    """The default ``phase`` of deploy_template: brackets nothing."""
    return nullcontext()


def deploy_template(
    template_path: Path,
    cloudformation: Any,
    s3: Any,
    stack_name: str,
    parameters: Mapping[str, str],
    *,
    region: str,
    account_id: str,
    bucket: str,
    prefix: str,
    confirm: Confirm,
    progress: Progress,
    poll_seconds: float = 2.0,
    timeout_seconds: float = 3600.0,
    phase: Callable[[str], AbstractContextManager[Any]] = untimed,
) -> tuple[DeployResult, dict[str, Any]]:
    """What ``swr deploy`` does, on AWS or the emulator: package the template into ``bucket``,
    apply the SAM transform and deploy it through a change set. Returns the result and the
    transformed template. ``phase(name)`` brackets each step: package, transform, change set."""
    with phase("package"):
        packaged = package(template_path, bucket, prefix, s3)
    with phase("transform"):
        transformed = transform(packaged, parameters, region, account_id)
    with phase("change set"):
        result = deploy(
            cloudformation,
            s3,
            stack_name,
            json.dumps(transformed, separators=(",", ":")),
            parameters,
            confirm=confirm,
            progress=progress,
            bucket=bucket,
            prefix=prefix,
            poll_seconds=poll_seconds,
            timeout_seconds=timeout_seconds,
        )
    return result, transformed


def deploy(
    cloudformation: Any,
    s3: Any,
    stack_name: str,
    template_body: str,
    parameters: Mapping[str, str],
    *,
    confirm: Confirm,
    progress: Progress,
    bucket: str | None = None,
    prefix: str = DEFAULT_PREFIX,
    poll_seconds: float = 2.0,
    timeout_seconds: float = 3600.0,
) -> DeployResult:
    """Create a change set for the stack, show it, ask ``confirm``, execute it and follow the
    stack events to the end. A change set without changes is deleted and reported as
    "no changes"; a declined one is deleted and the stack left as it was. DeployFailed when
    the stack cannot be changed now or the change fails (it names the failed resources)."""
    existing = _describe_stack(cloudformation, stack_name)
    status = existing["StackStatus"] if existing else None
    if status in MUST_DELETE_FIRST:
        raise DeployFailed(
            f"stack {stack_name} is {status}: CloudFormation cannot update it; "
            f"delete it (aws cloudformation delete-stack --stack-name {stack_name}) and deploy again"
        )
    if status == "UPDATE_ROLLBACK_FAILED":
        raise DeployFailed(
            f"stack {stack_name} is UPDATE_ROLLBACK_FAILED: finish its rollback first "
            f"(aws cloudformation continue-update-rollback --stack-name {stack_name}), then deploy again"
        )
    if status and status.endswith(IN_PROGRESS_SUFFIX) and status != "REVIEW_IN_PROGRESS":
        raise DeployFailed(f"stack {stack_name} is busy ({status}); deploy again once it has finished")
    kind = "UPDATE" if status and status != "REVIEW_IN_PROGRESS" else "CREATE"
    name = f"swr-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}"
    request: dict[str, Any] = {
        "StackName": stack_name,
        "ChangeSetName": name,
        "ChangeSetType": kind,
        "Capabilities": list(CAPABILITIES),
        "Parameters": _parameters(template_body, parameters, existing if kind == "UPDATE" else None),
        "Description": "swr deploy",
    }
    request.update(_template_source(s3, template_body, bucket, prefix))

    progress(f"creating change set {name} ({kind.lower()} of stack {stack_name})")
    try:
        change_set_id = str(cloudformation.create_change_set(**request)["Id"])
    except ClientError as error:
        # moto (not AWS) refuses an identical UPDATE outright instead of failing the change set.
        if _is_no_changes(str(error)):
            progress(f"no changes: stack {stack_name} is up to date")
            return _result(cloudformation, stack_name, "no changes", None, ())
        raise
    created_stack = status is None  # ours to remove again if nothing gets deployed
    described = _wait_for_change_set(cloudformation, change_set_id, poll_seconds, timeout_seconds)
    if described["Status"] == "FAILED":
        reason = str(described.get("StatusReason") or "")
        _discard(cloudformation, change_set_id, stack_name, created_stack)
        if _is_no_changes(reason):
            progress(f"no changes: stack {stack_name} is up to date")
            return _result(cloudformation, stack_name, "no changes", None, ())
        raise DeployFailed(f"change set {name} failed: {reason or 'no reason given'}")
    changes = tuple(_changes(cloudformation, change_set_id, described))
    for line in render_changes(changes):
        progress(line)
    if not confirm(changes):
        _discard(cloudformation, change_set_id, stack_name, created_stack)
        progress(f"not deployed: change set {name} deleted, stack {stack_name} left as it was")
        return _result(cloudformation, stack_name, "declined", name, changes)

    # The newest event so far marks where this deploy's events start.
    newest = cloudformation.describe_stack_events(StackName=stack_name).get("StackEvents", [])[:1]
    seen = {str(e["EventId"]) for e in newest}
    cloudformation.execute_change_set(ChangeSetName=change_set_id)
    progress(f"executing change set {name}")
    final, events = _follow_events(cloudformation, stack_name, seen, progress, poll_seconds, timeout_seconds)
    if final not in SUCCEEDED:
        raise DeployFailed(_failure_message(stack_name, final, events))
    outcome: Literal["created", "updated"] = "created" if kind == "CREATE" else "updated"
    result = _result(cloudformation, stack_name, outcome, name, changes)
    progress(f"stack {stack_name}: {final}")
    return result


def render_changes(changes: Sequence[Change]) -> list[str]:
    """The change set as a table: action, logical id, type, replacement."""
    if not changes:
        return ["change set: no resource changes listed (parameters or outputs only)"]
    headers = ("ACTION", "LOGICAL ID", "TYPE", "REPLACEMENT")
    rows = [(c.action, c.logical_id, c.resource_type, c.replacement or "-") for c in changes]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = [f"change set: {len(changes)} change{'s' if len(changes) != 1 else ''}"]
    lines.append("  " + "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return lines


def _describe_stack(cloudformation: Any, stack_name: str) -> dict[str, Any] | None:
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        if "does not exist" in str(error):
            return None
        raise
    return dict(stacks[0]) if stacks else None


def _parameters(template_body: str, given: Mapping[str, str], existing: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The values given, and for an update the stack's previous value of every other
    parameter the template still declares (as ``aws cloudformation deploy`` does), so a
    redeploy does not silently reset what an earlier deploy set."""
    declared = _parse_body(template_body).get("Parameters") or {}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise TemplateInvalid(
            f"the template has no parameter {', '.join(unknown)}; it has {', '.join(declared) or 'none'}"
        )
    previous = {p["ParameterKey"] for p in (existing or {}).get("Parameters", [])}
    # What CloudFormation would refuse anyway, said before a change set exists.
    missing = [
        k
        for k, spec in sorted(declared.items())
        if isinstance(spec, dict) and "Default" not in spec and k not in given and k not in previous
    ]
    if missing:
        raise TemplateInvalid(f"no value for parameter {', '.join(missing)}: the template has no default for it")
    result: list[dict[str, Any]] = [{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(given.items())]
    result += [
        {"ParameterKey": k, "UsePreviousValue": True} for k in sorted(declared) if k in previous and k not in given
    ]
    return result


def _parse_body(body: str) -> dict[str, Any]:
    try:
        parsed = yaml.load(body, Loader=_CfnLoader)  # a SafeLoader subclass; JSON is YAML too
    except yaml.YAMLError as error:
        raise TemplateInvalid(f"the template body is not valid JSON or YAML: {error}") from None
    if not isinstance(parsed, dict):
        raise TemplateInvalid("the template body is not a mapping")
    return parsed


def _template_source(s3: Any, body: str, bucket: str | None, prefix: str) -> dict[str, str]:
    data = body.encode("utf-8")
    if len(data) <= TEMPLATE_BODY_LIMIT:
        return {"TemplateBody": body}
    if not bucket:
        raise TemplateInvalid(f"the template is {len(data)} bytes, over {TEMPLATE_BODY_LIMIT}: it needs an S3 bucket")
    key = f"{prefix.strip('/')}/{hashlib.sha256(data).hexdigest()}.template.json".lstrip("/")
    put_artifact(s3, bucket, key, data)
    region = str(s3.meta.region_name or "us-east-1")
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    # CloudFormation fetches the template itself; the virtual-hosted URL is what it expects.
    return {"TemplateURL": f"https://{bucket}.s3.{region}.{suffix}/{key}"}


def _is_no_changes(text: str) -> bool:
    return any(marker in text for marker in NO_CHANGES)


def _wait_for_change_set(cloudformation: Any, change_set_id: str, poll: float, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        described = dict(cloudformation.describe_change_set(ChangeSetName=change_set_id))
        if described["Status"] in ("CREATE_COMPLETE", "FAILED"):
            return described
        if time.monotonic() > deadline:
            raise DeployFailed(f"change set {change_set_id} still {described['Status']} after {timeout:.0f} s")
        time.sleep(poll)


def _changes(cloudformation: Any, change_set_id: str, first_page: dict[str, Any]) -> Iterator[Change]:
    page = first_page
    while True:
        for item in page.get("Changes", []):
            change = item.get("ResourceChange") or {}
            yield Change(
                action=str(change.get("Action", "?")),
                logical_id=str(change.get("LogicalResourceId", "?")),
                resource_type=str(change.get("ResourceType", "?")),
                physical_id=change.get("PhysicalResourceId"),
                replacement=change.get("Replacement"),
            )
        token = page.get("NextToken")
        if not token:
            return
        page = dict(cloudformation.describe_change_set(ChangeSetName=change_set_id, NextToken=token))


def _new_events(cloudformation: Any, stack_name: str, seen: set[str]) -> list[dict[str, Any]]:
    """The stack's events newer than the newest one in ``seen``, oldest first. CloudFormation
    lists events newest first, so paging stops at the first one already seen."""
    new: list[dict[str, Any]] = []
    for page in cloudformation.get_paginator("describe_stack_events").paginate(StackName=stack_name):
        for event in page.get("StackEvents", []):
            if str(event["EventId"]) in seen:
                return new[::-1]
            new.append(event)
    return new[::-1]


def _follow_events(
    cloudformation: Any,
    stack_name: str,
    seen: set[str],
    progress: Progress,
    poll: float,
    timeout: float,
) -> tuple[str, list[dict[str, Any]]]:
    """Print each new stack event once, oldest first, until the stack's status is final;
    the final status and the events printed."""
    deadline = time.monotonic() + timeout
    printed: list[dict[str, Any]] = []
    while True:
        # Status before events: once it reads final, every event up to it is listed.
        status = str(cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]["StackStatus"])
        for event in _new_events(cloudformation, stack_name, seen):
            seen.add(str(event["EventId"]))
            printed.append(event)
            progress(_event_line(event))
        if not status.endswith(IN_PROGRESS_SUFFIX):
            return status, printed
        if time.monotonic() > deadline:
            raise DeployFailed(f"stack {stack_name} still {status} after {timeout:.0f} s; it may yet finish")
        time.sleep(poll)


def _event_line(event: dict[str, Any]) -> str:
    stamp = event["Timestamp"].astimezone(UTC).strftime("%H:%M:%S")
    status = str(event.get("ResourceStatus", "?"))
    line = f"  {stamp}  {status:<20}  {event.get('ResourceType', '?')}  {event.get('LogicalResourceId', '?')}"
    reason = event.get("ResourceStatusReason")
    return f"{line}  {reason}" if reason else line


def _failure_message(stack_name: str, status: str, events: Sequence[dict[str, Any]]) -> str:
    """The stack's final status and the first resources that failed, with their reasons;
    resources CloudFormation only cancelled because of another failure come last."""
    failed = [
        e
        for e in events
        if str(e.get("ResourceStatus", "")).endswith("_FAILED")
        and e.get("ResourceType") != "AWS::CloudFormation::Stack"
    ]
    failed.sort(key=lambda e: "cancelled" in str(e.get("ResourceStatusReason", "")).lower())
    if not failed:
        return f"stack {stack_name} ended {status}"
    causes = "; ".join(
        f"{e.get('LogicalResourceId')} ({e.get('ResourceType')}): {e.get('ResourceStatusReason') or 'no reason given'}"
        for e in failed[:3]
    )
    more = f" (and {len(failed) - 3} more)" if len(failed) > 3 else ""
    return f"stack {stack_name} ended {status}: {causes}{more}"


def _discard(cloudformation: Any, change_set_id: str, stack_name: str, created_stack: bool) -> None:
    """Delete the change set and, when this deploy created the stack for it, the empty
    stack (REVIEW_IN_PROGRESS, no resources) too: nothing is left behind."""
    cloudformation.delete_change_set(ChangeSetName=change_set_id)
    if created_stack:
        cloudformation.delete_stack(StackName=stack_name)


def _result(
    cloudformation: Any,
    stack_name: str,
    outcome: Literal["created", "updated", "no changes", "declined"],
    change_set_name: str | None,
    changes: Sequence[Change],
) -> DeployResult:
    stack = _describe_stack(cloudformation, stack_name) or {}
    outputs = {str(o["OutputKey"]): str(o["OutputValue"]) for o in stack.get("Outputs") or []}
    return DeployResult(
        stack_name=stack_name,
        stack_id=stack.get("StackId"),
        outcome=outcome,
        change_set_name=change_set_name,
        changes=tuple(changes),
        stack_status=stack.get("StackStatus"),
        outputs=outputs,
    )


def _error_code(error: Any) -> str:
    return str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))
