"""Onboarding: `swr register`, `swr unregister`, `swr ami refresh`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from swr.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    Where,
    command,
    connect_to_stack,
    operation_errors,
)
from swr.cli.options import App, Json
from swr.cli.output import print_json, print_lines

STACK = ("endpoint", "region", "stack_name")


def register(app: typer.Typer) -> None:
    command(app, "register", "Protect APP: validate, tag, create its alarms and write its record.", where=STACK)(
        _register
    )
    command(app, "unregister", "Stop protecting APP: remove its alarms, swr tags and record.", where=STACK)(_unregister)
    ami = typer.Typer(help="Manage the AMI replacements of an application launch from.", no_args_is_help=True)
    command(
        ami,
        "refresh",
        "Make a new AMI from APP's current instance (no reboot) and launch replacements from it.",
        where=STACK,
    )(_ami_refresh)
    app.add_typer(ami, name="ami")


def _register(
    app: App,
    instance: Annotated[str, typer.Option(metavar="ID", help="the instance that runs APP now")],
    target_group: Annotated[list[str], typer.Option(metavar="ARN", help="a target group of APP (repeatable)")],
    efs: Annotated[str, typer.Option(metavar="FS", help="the EFS file system with APP's shared data")],
    subnets: Annotated[
        list[str],
        typer.Option(metavar="SUBNET,SUBNET...", help="subnets to run in, in order of preference (comma-separated)"),
    ],
    mount_point: Annotated[str, typer.Option(help="where the boot gate mounts it")] = "/mnt/swr",
    instance_type: Annotated[
        list[str] | None,
        typer.Option(metavar="TYPE", help="a fallback instance type after the instance's own (repeatable)"),
    ] = None,
    health_timeout: Annotated[int, typer.Option(min=1, help="seconds to become healthy")] = 600,
    create_ami: Annotated[
        bool, typer.Option("--create-ami", help="launch replacements from a new AMI of the instance (no reboot)")
    ] = False,
    json: Json = False,
    *,
    where: Where,
) -> int:
    from pydantic import ValidationError

    from swr.ops import onboarding

    try:
        registration = onboarding.Registration(
            app=app,
            instance_id=instance,
            target_group_arns=target_group,
            file_system_id=efs,
            mount_point=mount_point,
            subnet_ids=[subnet.strip() for given in subnets for subnet in given.split(",") if subnet.strip()],
            extra_instance_types=instance_type or [],
            health_timeout_seconds=health_timeout,
            create_ami=create_ami,
        )
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise CliError(f"invalid registration: {problems}", EXIT_USAGE) from None
    aws, stack = connect_to_stack(where)
    with operation_errors(aws):
        result = onboarding.register(aws.client, stack, registration)
    if json:
        print_json({"actions": result.actions, "warnings": result.warnings, "record": result.record})
    else:
        print_lines(result.actions)
        print_lines([f"warning  fence: {warning}" for warning in result.warnings])
    return EXIT_OK


def _unregister(
    app: App,
    force: Annotated[bool, typer.Option("--force", help="even while a failover of APP is running")] = False,
    json: Json = False,
    *,
    where: Where,
) -> int:
    from swr.ops import onboarding

    aws, stack = connect_to_stack(where)
    with operation_errors(aws):
        result = onboarding.unregister(aws.client, stack, app, force=force)
    if json:
        print_json({"actions": result.actions, "leftovers": result.leftovers})
    else:
        print_lines(result.actions)
        for leftover in result.leftovers:
            print(f"swr unregister: {leftover}", file=sys.stderr)
    return EXIT_FAILED if result.leftovers else EXIT_OK


def _ami_refresh(
    app: App,
    json: Json = False,
    *,
    where: Where,
) -> int:
    from swr.ops import onboarding

    aws, stack = connect_to_stack(where)
    with operation_errors(aws):
        result = onboarding.refresh_ami(aws.client, stack, app)
    if json:
        print_json(
            {
                "image_id": result.image_id,
                "previous_image_id": result.previous_image_id,
                "version": result.record.version,
            }
        )
    else:
        print(f"created image {result.image_id} from {result.record.current_instance_id}")
        change = f"image {result.previous_image_id} -> {result.image_id}"
        print(f"updated record {app}: {change} (version {result.record.version})")
    return EXIT_OK
