"""The installer lays the hooks out on an instance (here: under a temporary root) with units
systemd accepts, and can be run again without losing an operator's edits."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = (
    "swr-boot-gate.service",
    "swr-heartbeat.service",
    "swr-fault-spool-flush.service",
    "swr-fault-spool-flush.timer",
)
SYSTEM_UNITS = Path("/usr/lib/systemd/system")


def install(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rms_hooks.install", "--root", str(root), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def first_install(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = install(
        root,
        "--app",
        "demo",
        "--table-name",
        "swr-records",
        "--region",
        "ap-northeast-1",
        "--user-application",
        "app_demo",
        *args,
    )
    assert done.returncode == 0, done.stderr
    return done


def verify(root: Path) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze verify`` of the installed units as the instance would load them: the
    root holds the distribution's targets (sysinit.target and the others every service is
    ordered against) and the launchers the units' ExecStart= name, so verify checks them too."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None or not SYSTEM_UNITS.is_dir():
        pytest.skip("systemd-analyze is not available on this machine")
    targets = root / "usr/lib/systemd/system"
    targets.mkdir(parents=True, exist_ok=True)
    for unit in SYSTEM_UNITS.glob("*.target"):
        if not unit.is_symlink():  # aliases would point outside the root
            shutil.copy(unit, targets)
    return subprocess.run(
        [analyze, "verify", f"--root={root}", *UNITS], capture_output=True, text=True, timeout=60, check=False
    )


def test_one_command_installs_the_hooks_their_configuration_and_units(tmp_path: Path) -> None:
    root = tmp_path / "instance"

    first_install(root)

    config = json.loads((root / "etc/swr/hooks.json").read_text())
    assert config == {
        "app": "demo",
        "table_name": "swr-records",
        "region": "ap-northeast-1",
        "user_application": "app_demo",
    }
    for name in ("swr-boot-gate", "swr-notify-fault", "swr-heartbeat"):
        launcher = root / "usr/local/bin" / name
        assert launcher.stat().st_mode & stat.S_IXUSR, f"{name} is not executable"
    assert stat.S_IMODE((root / "var/spool/swr").stat().st_mode) == 0o700
    units = root / "etc/systemd/system"
    gate = (units / "swr-boot-gate.service").read_text()
    assert "Before=smawrrms.service" in gate and "RequiredBy=smawrrms.service" in gate
    assert "ExecStart=/usr/local/bin/swr-boot-gate --config /etc/swr/hooks.json" in gate
    assert "TimeoutStartSec=1200" in gate, "longer than the gate's 900 s wait for its permit"
    assert "Restart=always" in (units / "swr-heartbeat.service").read_text()
    # enabled as systemctl enable would: RMS requires the gate, the timer runs with timers.target
    assert os.readlink(units / "smawrrms.service.requires/swr-boot-gate.service") == (
        "/etc/systemd/system/swr-boot-gate.service"
    )
    assert (units / "multi-user.target.wants/swr-heartbeat.service").is_symlink()
    assert (units / "timers.target.wants/swr-fault-spool-flush.timer").is_symlink()


def test_the_installed_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    root = tmp_path / "instance"
    first_install(root)

    verified = verify(root)

    assert verified.returncode == 0 and verified.stderr == "", verified.stderr


def test_verify_really_checks_the_installed_units(tmp_path: Path) -> None:
    # The check above is worth something only if verify fails on a broken installation.
    root = tmp_path / "instance"
    first_install(root)
    (root / "usr/local/bin/swr-heartbeat").unlink()
    unit = root / "etc/systemd/system/swr-fault-spool-flush.timer"
    unit.write_text(unit.read_text().replace("OnBootSec=1min", "OnBootSec=soon"))

    verified = verify(root)

    assert verified.returncode != 0
    assert "swr-heartbeat is not executable" in verified.stderr
    assert "swr-fault-spool-flush.timer" in verified.stderr and "soon" in verified.stderr


def test_the_installed_launchers_run_the_hooks(tmp_path: Path) -> None:
    root = tmp_path / "instance"
    first_install(root)

    for name in ("swr-boot-gate", "swr-notify-fault", "swr-heartbeat"):
        done = subprocess.run(
            [str(root / "usr/local/bin" / name), "--help"], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0 and f"usage: {name}" in done.stdout, done.stderr


def test_reinstalling_is_idempotent_and_keeps_an_edited_configuration(tmp_path: Path) -> None:
    root = tmp_path / "instance"
    first_install(root)
    config = root / "etc/swr/hooks.json"
    edited = {**json.loads(config.read_text()), "permit_timeout_seconds": 1500, "metric_interval_seconds": 15}
    config.write_text(json.dumps(edited))
    unit = root / "etc/systemd/system/swr-heartbeat.service"
    before = unit.stat().st_mtime_ns

    again = install(root, "--app", "other", "--table-name", "other-table")

    assert again.returncode == 0, again.stderr
    assert json.loads(config.read_text()) == edited
    assert f"kept       {config}" in again.stdout
    assert unit.stat().st_mtime_ns == before and f"unchanged  {unit}" in again.stdout
    # the gate's unit follows the edited wait for its permit
    assert "TimeoutStartSec=1800" in (root / "etc/systemd/system/swr-boot-gate.service").read_text()
    installed = [line.split()[1] for line in again.stdout.splitlines() if line.startswith("installed")]
    assert installed == [str(root / "etc/systemd/system/swr-boot-gate.service")]


def test_the_rms_unit_is_an_option(tmp_path: Path) -> None:
    root = tmp_path / "instance"
    first_install(root, "--rms-unit", "rms.service")

    gate = (root / "etc/systemd/system/swr-boot-gate.service").read_text()
    assert "Before=rms.service" in gate and "RequiredBy=rms.service" in gate
    assert (root / "etc/systemd/system/rms.service.requires/swr-boot-gate.service").is_symlink()
    assert not (root / "etc/systemd/system/smawrrms.service.requires").exists()


def test_a_first_install_without_the_application_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "instance"

    done = install(root, "--region", "ap-northeast-1")

    assert done.returncode == 2
    assert "--app and --table-name needed" in done.stderr
    assert not root.exists() or list(root.rglob("*")) == []


def test_every_hook_reads_the_one_installed_configuration(tmp_path: Path) -> None:
    from rms_hooks.boot_gate import load_config
    from rms_hooks.config import load_hooks_config

    root = tmp_path / "instance"
    first_install(root)
    path = root / "etc/swr/hooks.json"

    gate = load_config(path, environ={})
    hooks = load_hooks_config(path, environ={})

    assert (gate.app, gate.table_name, gate.region) == ("demo", "swr-records", "ap-northeast-1")
    assert (hooks.app, hooks.region, hooks.user_application) == ("demo", "ap-northeast-1", "app_demo")
    assert hooks.status_argv() == ["hvassert", "-s", "app_demo", "Online"]
    assert str(hooks.spool_path) == "/var/spool/swr/faults.jsonl"
