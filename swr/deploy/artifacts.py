"""Artifacts: the handler code zipped deterministically, local template references uploaded
to the artifact bucket under content-hash keys, and the bucket itself (private, encrypted,
versioned)."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from swr.deploy.model import ArtifactBucketUnusable, Progress, TemplateInvalid
from swr.deploy.template import load_template

CODE_PACKAGES = ("handlers",)  # what a function's zip holds: the handlers and nothing else
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can hold: same files, same bytes


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


def _error_code(error: Any) -> str:
    return str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))
