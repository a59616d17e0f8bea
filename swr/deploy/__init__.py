"""Package the SAM template, transform it locally and deploy it through a CloudFormation
change set: the logic behind ``swr deploy``, with no command-line parsing and no printing
(it reports through the ``progress``, ``confirm`` and ``on_event`` callbacks it is given).

The same path serves AWS and the emulator. moto's CloudFormation cannot run transforms, so
the SAM transform runs here and both receive plain CloudFormation.

    template = package(Path("infra/template.yaml"), bucket, "swr", s3)
    body = json.dumps(transform(template, parameters, region, account_id))
    result = deploy(cloudformation, s3, "swr", body, parameters, confirm=..., progress=print, bucket=bucket)

- ``template``: templates read as CloudFormation reads them
- ``artifacts``: the handler code zipped, artifacts uploaded, the artifact bucket
- ``sam``: the local SAM transform
- ``change_set``: a change set created, confirmed, executed; ``events``: the stack followed
- ``pipeline``: all of it in order, as ``swr deploy`` runs it
"""

from swr.deploy.artifacts import code_zip, default_bucket_name, ensure_artifact_bucket, package, put_artifact
from swr.deploy.change_set import DEFAULT_PREFIX, TEMPLATE_BODY_LIMIT, deploy
from swr.deploy.model import (
    ArtifactBucketUnusable,
    Change,
    Confirm,
    DeployError,
    DeployFailed,
    DeployResult,
    OnEvent,
    Progress,
    StackEvent,
    TemplateInvalid,
)
from swr.deploy.pipeline import deploy_template, untimed
from swr.deploy.sam import transform
from swr.deploy.template import load_template

__all__ = [
    "DEFAULT_PREFIX",
    "TEMPLATE_BODY_LIMIT",
    "ArtifactBucketUnusable",
    "Change",
    "Confirm",
    "DeployError",
    "DeployFailed",
    "DeployResult",
    "OnEvent",
    "Progress",
    "StackEvent",
    "TemplateInvalid",
    "code_zip",
    "default_bucket_name",
    "deploy",
    "deploy_template",
    "ensure_artifact_bucket",
    "load_template",
    "package",
    "put_artifact",
    "transform",
    "untimed",
]
