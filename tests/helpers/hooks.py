"""The hooks as an instance runs them: their real entry points in subprocesses, with the
instance's environment and hooks.json, against an emulator served on loopback (the fixtures
that serve it are in tests/hooks/conftest.py)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swr.emulator import Emulator


@dataclass
class Served:
    emu: Emulator
    endpoint: str
    config: Path  # the instance's hooks.json
    spool: Path

    def env(self, *, api_down: bool = False, **extra: str) -> dict[str, str]:
        """The environment of a hook on the instance: credentials, region, and the endpoint."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SWR_", "HV_"))}
        env.update(
            AWS_ENDPOINT_URL=closed_port() if api_down else self.endpoint,
            AWS_REGION=self.emu.region,
            **self.instance_credentials(),
        )
        env.update(extra)
        return env

    def instance_credentials(self) -> dict[str, str]:
        """The instance role's credentials, as the instance profile hands them out (a session
        named after the instance): the emulator authorizes each call of the hook against the
        role, and any refusal fails the test."""
        assert self.emu.stack is not None
        granted = self.emu.boto3_client("sts").assume_role(
            RoleArn=self.emu.stack.InstanceRoleArn, RoleSessionName=self.emu.primary_instance_id
        )["Credentials"]
        return {
            "AWS_ACCESS_KEY_ID": granted["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": granted["SecretAccessKey"],
            "AWS_SESSION_TOKEN": granted["SessionToken"],
        }

    def spooled(self) -> list[dict[str, Any]]:
        """The details of the spooled faults, in spool order."""
        if not self.spool.exists():
            return []
        return [json.loads(json.loads(line)["entry"]["Detail"]) for line in self.spool.read_text().splitlines()]


def closed_port() -> str:
    """An endpoint on loopback where nothing listens: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def run_hook(module: str, *args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """A hook's real entry point (``python -m rms_hooks.<module>``), as its launcher runs it."""
    return subprocess.run(
        [sys.executable, "-m", f"rms_hooks.{module}", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def write_config(path: Path, **values: Any) -> Path:
    path.write_text(json.dumps(values, indent=2))
    return path


def serve(emu: Emulator, directory: Path) -> Served:
    """The emulator served on loopback, with the instance's hooks.json and spool in ``directory``."""
    endpoint = emu.start_server(port=0)
    spool = directory / "spool" / "faults.jsonl"
    config = write_config(
        directory / "hooks.json",
        app=emu.app,
        table_name=emu.table_name,
        region=emu.region,
        spool_path=str(spool),
        publish_timeout_seconds=1,  # the API "down" is a refused connection: give up quickly
        metric_namespace=emu.stack.MetricNamespace if emu.stack else "swr",
    )
    return Served(emu, endpoint, config, spool)
