"""`swr deploy`: package the SAM template and deploy it through a change set."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from swr.cli.common import (
    EXIT_ENVIRONMENT,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Aws,
    CliError,
    Command,
    aws_errors,
    endpoint_url,
    print_lines,
)

DEFAULT_TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "template.yaml"
ARTIFACT_PREFIX = "swr"


def register(command: Command) -> None:
    from swr.stack import DEFAULT_STACK_NAME

    deploy = command("deploy", _deploy, "Package the SAM template and deploy it through a CloudFormation change set.")
    deploy.add_argument(
        "--stack-name", default=DEFAULT_STACK_NAME, help=f"the stack to create or update ({DEFAULT_STACK_NAME})"
    )
    deploy.add_argument(
        "--template", type=Path, default=DEFAULT_TEMPLATE, help="the SAM template (infra/template.yaml of swr)"
    )
    deploy.add_argument(
        "--parameter",
        action="append",
        default=[],
        type=_key_value,
        metavar="KEY=VALUE",
        help="a template parameter (repeatable); on an update, parameters not given keep their values",
    )
    deploy.add_argument(
        "--bucket", help="S3 bucket for the artifacts (default: swr-artifacts-ACCOUNT-REGION, created if missing)"
    )
    deploy.add_argument("--yes", action="store_true", help="execute the change set without asking")
    group = deploy.add_argument_group("where")
    group.add_argument(
        "--endpoint", metavar="URL", type=endpoint_url, help="AWS API endpoint, e.g. the emulator's (default: AWS)"
    )
    group.add_argument("--region", help="AWS region (default: from the AWS configuration)")
    deploy.set_defaults(state_machine_arn=None)  # Aws.from_args reads it; a deploy needs no state machine


def _key_value(text: str) -> tuple[str, str]:
    key, equals, value = text.partition("=")
    if not equals or not key.strip():
        raise argparse.ArgumentTypeError(f"not KEY=VALUE: {text!r}")
    return key.strip(), value


def _deploy(args: argparse.Namespace) -> int:
    from swr import deployer

    template: Path = args.template
    if not template.is_file():
        raise CliError(f"no template at {template}: pass --template", EXIT_USAGE)
    # Without a terminal nobody can answer the prompt; refuse before touching anything.
    if not args.yes and not sys.stdin.isatty():
        raise CliError("stdin is not a terminal, so the change set cannot be confirmed: pass --yes", EXIT_USAGE)
    parameters = dict(args.parameter)
    aws = Aws.from_args(args)
    s3, cloudformation = aws.client("s3"), aws.client("cloudformation")

    def say(line: str) -> None:
        print(line, flush=True)

    with aws_errors(aws, f"the deploy of stack {args.stack_name}"):
        try:
            account = str(aws.client("sts").get_caller_identity()["Account"])
            bucket = args.bucket or deployer.default_bucket_name(account, aws.region)
            if not args.bucket:
                deployer.ensure_artifact_bucket(s3, bucket, aws.region, account, say)
            say(f"packaging {template} into s3://{bucket}/{ARTIFACT_PREFIX}/")
            result, _ = deployer.deploy_template(
                template,
                cloudformation,
                s3,
                args.stack_name,
                parameters,
                region=aws.region,
                account_id=account,
                bucket=bucket,
                prefix=ARTIFACT_PREFIX,
                confirm=lambda changes: args.yes or _ask("execute this change set?"),
                progress=say,
                poll_seconds=0.2 if aws.endpoint else 5.0,
            )
        except deployer.TemplateInvalid as error:
            raise CliError(str(error), EXIT_USAGE) from None
        except deployer.DeployFailed as error:
            raise CliError(str(error), EXIT_FAILED) from None
        except deployer.ArtifactBucketUnusable as error:
            raise CliError(str(error), EXIT_ENVIRONMENT) from None
    if result.outcome == "declined":
        return EXIT_FAILED
    swr_stack = _swr_outputs(result.outputs)
    if swr_stack is not None:  # also with no changes: deploying again is how an operator re-points the rules
        from swr import onboarding

        with aws_errors(aws, f"pointing the rules of stack {args.stack_name}"):
            for line in onboarding.point_rules(aws.client, swr_stack):
                say(line)
    if result.outputs:
        say("outputs:")
        width = max(len(key) for key in result.outputs)
        print_lines([f"  {key.ljust(width)}  {value}" for key, value in sorted(result.outputs.items())])
    return EXIT_OK


def _swr_outputs(outputs: dict[str, str]) -> Any:
    """The outputs as an swr stack's, or None for another template's."""
    from pydantic import ValidationError

    from swr.stack import StackOutputs

    try:
        return StackOutputs.model_validate(outputs)
    except ValidationError:
        return None


def _ask(question: str) -> bool:
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")
