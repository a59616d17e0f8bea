"""`swr deploy`: package the SAM template and deploy it through a change set."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from swr.cli.common import (
    EXIT_ENVIRONMENT,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Aws,
    CliError,
    Where,
    aws_errors,
    command,
)
from swr.cli.options import DEFAULT_STACK_NAME
from swr.cli.output import print_table, progress, table_lines

if TYPE_CHECKING:
    from swr.deploy import Change, StackEvent

DEFAULT_TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "template.yaml"
ARTIFACT_PREFIX = "swr"


def register(app: typer.Typer) -> None:
    command(
        app,
        "deploy",
        "Package the SAM template and deploy it through a CloudFormation change set.",
        where=("endpoint", "region"),
    )(_deploy)


def _key_value(text: str) -> tuple[str, str]:
    key, equals, value = text.partition("=")
    if not equals or not key.strip():
        raise typer.BadParameter(f"not KEY=VALUE: {text!r}")
    return key.strip(), value


def _key_values(texts: list[str] | None) -> list[str]:
    for text in texts or []:
        _key_value(text)
    return texts or []


def _deploy(
    stack_name: Annotated[str, typer.Option(help="the stack to create or update")] = DEFAULT_STACK_NAME,
    template: Annotated[
        Path, typer.Option(help="the SAM template (default: infra/template.yaml of swr)", show_default=False)
    ] = DEFAULT_TEMPLATE,
    parameter: Annotated[
        list[str] | None,
        typer.Option(
            metavar="KEY=VALUE",
            callback=_key_values,
            help="a template parameter (repeatable); on an update, parameters not given keep their values",
        ),
    ] = None,
    bucket: Annotated[
        str | None,
        typer.Option(help="S3 bucket for the artifacts (default: swr-artifacts-ACCOUNT-REGION, created if missing)"),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="execute the change set without asking")] = False,
    *,
    where: Where,
) -> int:
    from swr import deploy

    if not template.is_file():
        raise CliError(f"no template at {template}: pass --template", EXIT_USAGE)
    # Without a terminal nobody can answer the prompt; refuse before touching anything.
    if not yes and not sys.stdin.isatty():
        raise CliError("stdin is not a terminal, so the change set cannot be confirmed: pass --yes", EXIT_USAGE)
    parameters = dict(_key_value(text) for text in parameter or [])
    aws = Aws.connect(dataclasses.replace(where, stack_name=stack_name))
    s3, cloudformation = aws.client("s3"), aws.client("cloudformation")

    with progress(f"deploying stack {stack_name}") as live, aws_errors(aws, f"the deploy of stack {stack_name}"):

        def say(line: str) -> None:
            live.echo(line)
            live.update(line)

        def confirm(changes: Sequence[Change]) -> bool:
            heading, *table = change_lines(changes)
            say(heading)
            for line in table:
                live.echo(line)
            return yes or _ask("execute this change set?")

        try:
            account = str(aws.client("sts").get_caller_identity()["Account"])
            artifacts = bucket or deploy.default_bucket_name(account, aws.region)
            if not bucket:
                deploy.ensure_artifact_bucket(s3, artifacts, aws.region, account, say)
            say(f"packaging {template} into s3://{artifacts}/{ARTIFACT_PREFIX}/")
            result, _ = deploy.deploy_template(
                template,
                cloudformation,
                s3,
                stack_name,
                parameters,
                region=aws.region,
                account_id=account,
                bucket=artifacts,
                prefix=ARTIFACT_PREFIX,
                confirm=confirm,
                progress=say,
                on_event=lambda event: say(event_line(event)),
                poll_seconds=0.2 if aws.endpoint else 5.0,
            )
        except deploy.TemplateInvalid as error:
            raise CliError(str(error), EXIT_USAGE) from None
        except deploy.DeployFailed as error:
            raise CliError(str(error), EXIT_FAILED) from None
        except deploy.ArtifactBucketUnusable as error:
            raise CliError(str(error), EXIT_ENVIRONMENT) from None
    if result.outcome == "declined":
        return EXIT_FAILED
    swr_stack = _swr_outputs(result.outputs)
    if swr_stack is not None:  # also with no changes: deploying again is how an operator re-points the rules
        from swr.ops import onboarding

        with aws_errors(aws, f"pointing the rules of stack {stack_name}"):
            for line in onboarding.point_rules(aws.client, swr_stack):
                print(line, flush=True)
    if result.outputs:
        print("outputs:")
        print_table(("  OUTPUT", "VALUE"), [(f"  {key}", value) for key, value in sorted(result.outputs.items())])
    return EXIT_OK


def change_lines(changes: Sequence[Change]) -> list[str]:
    """A change set as it is shown before the question: a heading, then a table of action,
    logical id, type and replacement."""
    if not changes:
        return ["change set: no resource changes listed (parameters or outputs only)"]
    rows = [(f"  {c.action}", c.logical_id, c.resource_type, c.replacement or "-") for c in changes]
    heading = f"change set: {len(changes)} change{'s' if len(changes) != 1 else ''}"
    return [heading, *table_lines(("  ACTION", "LOGICAL ID", "TYPE", "REPLACEMENT"), rows)]


def event_line(event: StackEvent) -> str:
    """A stack event as a line: time (UTC), status, resource type, logical id, reason."""
    stamp = event.timestamp.astimezone(UTC).strftime("%H:%M:%S")
    line = f"  {stamp}  {event.status:<20}  {event.resource_type}  {event.logical_id}"
    return f"{line}  {event.reason}" if event.reason else line


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
