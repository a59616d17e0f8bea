"""Onboarding: `swr register`, `swr unregister`, `swr ami refresh`."""

from __future__ import annotations

import argparse
import json
import sys

from swr.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Aws,
    CliError,
    Command,
    operation_errors,
    positive_int,
    print_lines,
    stack_options,
    stack_outputs,
    valid_app,
)


def register(command: Command) -> None:

    register = command("register", _register, "Protect APP: validate, tag, create its alarms and write its record.")
    register.add_argument("app", metavar="APP")
    register.add_argument("--instance", required=True, metavar="ID", help="the instance that runs APP now")
    register.add_argument(
        "--target-group", required=True, action="append", metavar="ARN", help="a target group of APP (repeatable)"
    )
    register.add_argument("--efs", required=True, metavar="FS", help="the EFS file system with APP's shared data")
    register.add_argument("--mount-point", default="/mnt/swr", help="where the boot gate mounts it (/mnt/swr)")
    register.add_argument(
        "--subnets", required=True, nargs="+", metavar="SUBNET", help="subnets to run in, in order of preference"
    )
    register.add_argument(
        "--instance-type",
        action="append",
        default=[],
        metavar="TYPE",
        help="a fallback instance type after the instance's own (repeatable)",
    )
    register.add_argument("--health-timeout", type=positive_int, default=600, help="seconds to become healthy (600)")
    register.add_argument(
        "--create-ami", action="store_true", help="launch replacements from a new AMI of the instance (no reboot)"
    )
    stack_options(register)

    unregister = command("unregister", _unregister, "Stop protecting APP: remove its alarms, swr tags and record.")
    unregister.add_argument("app", metavar="APP")
    unregister.add_argument("--force", action="store_true", help="even while a failover of APP is running")
    stack_options(unregister)

    ami = command("ami", _ami_refresh, "Manage the AMI replacements of an application launch from.")
    actions = ami.add_subparsers(dest="ami_action", metavar="ACTION", required=True)
    refresh_help = "Make a new AMI from APP's current instance (no reboot) and launch replacements from it."
    refresh = actions.add_parser("refresh", help=refresh_help, description=refresh_help)
    refresh.add_argument("app", metavar="APP")
    # SUPPRESS: an unset -v here must not override `swr ami -v refresh`.
    refresh.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="show logs")
    stack_options(refresh)


def _register(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from swr import onboarding

    app = valid_app(args.app)
    try:
        registration = onboarding.Registration(
            app=app,
            instance_id=args.instance,
            target_group_arns=args.target_group,
            file_system_id=args.efs,
            mount_point=args.mount_point,
            subnet_ids=args.subnets,
            extra_instance_types=args.instance_type,
            health_timeout_seconds=args.health_timeout,
            create_ami=args.create_ami,
        )
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise CliError(f"invalid registration: {problems}", EXIT_USAGE) from None
    aws = Aws.from_args(args)
    stack = stack_outputs(aws, args.stack_name)
    with operation_errors(aws):
        result = onboarding.register(aws.client, stack, registration)
    if args.json:
        registered = {
            "actions": result.actions,
            "warnings": result.warnings,
            "record": result.record.model_dump(mode="json"),
        }
        print(json.dumps(registered, indent=2))
    else:
        print_lines(result.actions)
        print_lines([f"warning  fence: {warning}" for warning in result.warnings])
    return EXIT_OK


def _unregister(args: argparse.Namespace) -> int:
    from swr import onboarding

    app = valid_app(args.app)
    aws = Aws.from_args(args)
    stack = stack_outputs(aws, args.stack_name)
    with operation_errors(aws):
        result = onboarding.unregister(aws.client, stack, app, force=args.force)
    if args.json:
        print(json.dumps({"actions": result.actions, "leftovers": result.leftovers}, indent=2))
    else:
        print_lines(result.actions)
        for leftover in result.leftovers:
            print(f"swr unregister: {leftover}", file=sys.stderr)
    return EXIT_FAILED if result.leftovers else EXIT_OK


def _ami_refresh(args: argparse.Namespace) -> int:
    from swr import onboarding

    app = valid_app(args.app)
    aws = Aws.from_args(args)
    stack = stack_outputs(aws, args.stack_name)
    with operation_errors(aws):
        result = onboarding.refresh_ami(aws.client, stack, app)
    if args.json:
        print(
            json.dumps(
                {
                    "image_id": result.image_id,
                    "previous_image_id": result.previous_image_id,
                    "version": result.record.version,
                },
                indent=2,
            )
        )
    else:
        print(f"created image {result.image_id} from {result.record.current_instance_id}")
        change = f"image {result.previous_image_id} -> {result.image_id}"
        print(f"updated record {app}: {change} (version {result.record.version})")
    return EXIT_OK
