"""Install the instance-side hooks on a Linux instance, in one command:

    sudo swr-install-hooks --app demo --table-name swr-records --region ap-northeast-1 \\
        --user-application app_demo [--rms-unit smawrrms.service]

It lays out, under ``--root`` (default ``/``; any directory for an image build or a test):

- ``<bindir>/swr-boot-gate``, ``swr-notify-fault``, ``swr-heartbeat``: launchers that run the
  hooks with the Python environment the installer runs from (``--python``);
- ``/etc/swr/hooks.json``: the shared configuration, written only when absent, so an edited
  file survives a re-install (the options then only fill a new file);
- ``/var/spool/swr/``: the fault spool's directory (mode 0700);
- ``/etc/systemd/system/``: ``swr-boot-gate.service`` (oneshot, before and required by the RMS
  unit), ``swr-heartbeat.service`` (Restart=always), ``swr-fault-spool-flush.service`` and
  ``.timer``; enabled with the symlinks ``systemctl enable`` would make from their
  ``[Install]`` sections (so enabling needs no running systemd, e.g. in an image build).

Re-running it is idempotent. On the live root it ends with ``systemctl daemon-reload``.
Exit codes: 0 installed, 2 bad usage (e.g. no configuration and no --app/--table-name),
3 cannot write (permissions: run as root).
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

DEFAULT_RMS_UNIT = "smawrrms.service"  # PRIMECLUSTER RMS's systemd unit
DEFAULT_BINDIR = "/usr/local/bin"
CONFIG_PATH = "/etc/swr/hooks.json"
SPOOL_DIR = "/var/spool/swr"
UNIT_DIR = "/etc/systemd/system"
UNITS = (
    "swr-boot-gate.service",
    "swr-heartbeat.service",
    "swr-fault-spool-flush.service",
    "swr-fault-spool-flush.timer",
)
LAUNCHERS = {
    "swr-boot-gate": "rms_hooks.boot_gate",
    "swr-notify-fault": "rms_hooks.fault_notifier",
    "swr-heartbeat": "rms_hooks.heartbeat",
}
# The gate's own default wait, plus time to mount EFS and start the workload.
DEFAULT_PERMIT_TIMEOUT_SECONDS = 900.0
START_MARGIN_SECONDS = 300


class InstallError(RuntimeError):
    """The installation cannot proceed; nothing further is written."""


@dataclass(frozen=True)
class Layout:
    root: Path
    bindir: str
    rms_unit: str
    python: str

    def at(self, path: str) -> Path:
        """``path`` (as the instance will see it) under the root being installed into."""
        return self.root / path.lstrip("/")


def _write(path: Path, text: str, mode: int, report: list[str]) -> None:
    """Write atomically, only when the content or mode differs."""
    if path.exists() and path.read_text() == text and (path.stat().st_mode & 0o7777) == mode:
        report.append(f"unchanged  {path}")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    report.append(f"installed  {path}")


def _launcher(python: str, module: str) -> str:
    return (
        "#!/bin/sh\n"
        "# Installed by swr-install-hooks: runs the swr hook in the Python environment it was installed from.\n"
        f'exec {shlex.quote(python)} -m {module} "$@"\n'
    )


def _config(args: argparse.Namespace, path: Path, report: list[str]) -> dict[str, object]:
    """The configuration file: kept when present (it may have been edited), else written."""
    if path.exists():
        try:
            existing = json.loads(path.read_text())
        except ValueError as error:
            raise InstallError(f"{path} exists but is not JSON ({error}); fix or remove it") from error
        report.append(f"kept       {path} (existing configuration; options for a new file ignored)")
        return existing if isinstance(existing, dict) else {}
    missing = [flag for flag, value in (("--app", args.app), ("--table-name", args.table_name)) if not value]
    if missing:
        raise InstallError(f"{path} does not exist yet: {' and '.join(missing)} needed to write it")
    values: dict[str, object] = {"app": args.app, "table_name": args.table_name}
    optional = {
        "region": args.region,
        "user_application": args.user_application,
        "metric_namespace": args.metric_namespace,
        "event_bus_name": args.event_bus_name,
        "workload_command": args.workload_command,
    }
    values.update({key: value for key, value in optional.items() if value})
    _write(path, json.dumps(values, indent=2) + "\n", 0o644, report)
    return values


def _render(name: str, layout: Layout, gate_timeout: int) -> str:
    text = resources.files("rms_hooks").joinpath("systemd", name).read_text()
    for placeholder, value in {
        "@BINDIR@": layout.bindir,
        "@CONFIG@": CONFIG_PATH,
        "@RMS_UNIT@": layout.rms_unit,
        "@GATE_TIMEOUT@": str(gate_timeout),
    }.items():
        text = text.replace(placeholder, value)
    return text


def _enable(name: str, text: str, layout: Layout, report: list[str]) -> None:
    """The symlinks ``systemctl enable`` makes for the unit's [Install] section."""
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    if not parser.has_section("Install"):
        return
    for key, suffix in (("WantedBy", "wants"), ("RequiredBy", "requires")):
        for target in parser.get("Install", key, fallback="").split():
            link = layout.at(f"{UNIT_DIR}/{target}.{suffix}/{name}")
            destination = f"{UNIT_DIR}/{name}"
            if link.is_symlink() and os.readlink(link) == destination:
                report.append(f"unchanged  {link}")
                continue
            link.parent.mkdir(parents=True, exist_ok=True)
            link.unlink(missing_ok=True)
            link.symlink_to(destination)
            report.append(f"enabled    {link} -> {destination}")


def install(args: argparse.Namespace) -> list[str]:
    layout = Layout(root=args.root, bindir=args.bindir, rms_unit=args.rms_unit, python=args.python)
    report: list[str] = []
    config = _config(args, layout.at(CONFIG_PATH), report)
    for name, module in LAUNCHERS.items():
        _write(layout.at(f"{layout.bindir}/{name}"), _launcher(layout.python, module), 0o755, report)
    spool = layout.at(SPOOL_DIR)
    spool.mkdir(parents=True, exist_ok=True)
    spool.chmod(0o700)
    permit_timeout = config.get("permit_timeout_seconds", DEFAULT_PERMIT_TIMEOUT_SECONDS)
    if isinstance(permit_timeout, bool) or not isinstance(permit_timeout, int | float):
        permit_timeout = DEFAULT_PERMIT_TIMEOUT_SECONDS
    gate_timeout = int(permit_timeout) + START_MARGIN_SECONDS
    for name in UNITS:
        text = _render(name, layout, gate_timeout)
        _write(layout.at(f"{UNIT_DIR}/{name}"), text, 0o644, report)
        _enable(name, text, layout, report)
    if layout.root == Path("/") and not args.no_reload:
        report.append(_daemon_reload())
    return report


def _daemon_reload() -> str:
    if shutil.which("systemctl") is None or not Path("/run/systemd/system").exists():
        return "skipped    systemctl daemon-reload (systemd is not running here)"
    done = subprocess.run(["systemctl", "daemon-reload"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise InstallError(f"systemctl daemon-reload failed: {done.stderr.strip()}")
    return "reloaded   systemd (systemctl daemon-reload)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swr-install-hooks",
        description="Install the swr instance hooks (boot gate, fault notifier, heartbeat) with their systemd units.",
    )
    parser.add_argument("--root", type=Path, default=Path("/"), help="install under this directory (default /)")
    parser.add_argument(
        "--rms-unit",
        default=DEFAULT_RMS_UNIT,
        help=f"the systemd unit that starts RMS; the boot gate runs before it (default {DEFAULT_RMS_UNIT})",
    )
    parser.add_argument("--bindir", default=DEFAULT_BINDIR, help=f"where the launchers go (default {DEFAULT_BINDIR})")
    parser.add_argument("--python", default=sys.executable, help="the Python that runs the hooks (default: this one)")
    parser.add_argument("--no-reload", action="store_true", help="do not run systemctl daemon-reload")
    new = parser.add_argument_group("a new configuration file (ignored when /etc/swr/hooks.json exists)")
    new.add_argument("--app", help="the swr application (required for a new file)")
    new.add_argument("--table-name", help="the stack's record table, output RecordTableName (required for a new file)")
    new.add_argument("--region", help="default: the instance's own, from IMDS")
    new.add_argument("--user-application", help="the RMS userApplication (heartbeat status, fault reports)")
    new.add_argument("--metric-namespace", help="the stack's MetricNamespace output (default swr)")
    new.add_argument("--event-bus-name", help="default: default")
    new.add_argument("--workload-command", help="what the boot gate runs to start the workload (e.g. 'hvcm')")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 2
    if not args.rms_unit.endswith((".service", ".target")) or "/" in args.rms_unit:
        print(
            f"swr-install-hooks: --rms-unit {args.rms_unit!r} must be a unit name like {DEFAULT_RMS_UNIT}",
            file=sys.stderr,
        )
        return 2
    if not args.bindir.startswith("/"):
        print(f"swr-install-hooks: --bindir {args.bindir!r} must be an absolute path", file=sys.stderr)
        return 2
    args.root = args.root.resolve()
    try:
        report = install(args)
    except InstallError as error:
        print(f"swr-install-hooks: {error}", file=sys.stderr)
        return 2
    except PermissionError as error:
        print(f"swr-install-hooks: {error} (run as root, or pass --root)", file=sys.stderr)
        return 3
    print("\n".join(report))
    if args.root == Path("/"):
        print(
            "next: systemctl start swr-heartbeat.service swr-fault-spool-flush.timer"
            " (the boot gate runs at the next boot, before RMS)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
