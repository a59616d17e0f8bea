"""What the boot gate needs from the machine it runs on, and the real Linux implementation.

``Host`` is deliberately small so another implementation (the emulator's simulated
instance, a test fake) only has four methods to provide:

- ``identity()``: who this instance is (id, AZ, region) and what it was launched for
  (its ``swr:app`` and ``swr:generation`` tags). Raises when that cannot be established.
- ``mount_efs(file_system_id, mount_point, region)``: mount the shared file system for
  writing. Idempotent (already mounted there = success); raises on failure.
- ``start_workload()``: start the application. Raises on failure.
- ``self_fence(reason)``: make sure this instance can do no harm (on Linux: power off).
  Called only when the gate has decided this instance must not run the workload.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from rms_hooks.imds import ImdsClient, ImdsNotFound

log = logging.getLogger("swr-boot-gate")

APP_TAG = "swr:app"
GENERATION_TAG = "swr:generation"
EFS_MOUNT_HELPER = Path("/sbin/mount.efs")
PROC_MOUNTS = Path("/proc/mounts")


@dataclass(frozen=True)
class Identity:
    instance_id: str
    az: str
    region: str
    app_tag: str
    generation: int


class IdentityError(RuntimeError):
    """This instance's identity or launch tags could not be established."""


class Host(Protocol):
    def identity(self) -> Identity: ...

    def mount_efs(self, file_system_id: str, mount_point: str, region: str) -> None: ...

    def start_workload(self) -> None: ...

    def self_fence(self, reason: str) -> None: ...


def read_identity(imds: ImdsClient) -> Identity:
    """Identity from IMDSv2. Tags come from instance-metadata tags, so no EC2 API call
    (and no ec2:DescribeTags permission) is needed at boot."""
    instance_id = imds.get("meta-data/instance-id")
    az = imds.get("meta-data/placement/availability-zone")
    region = imds.get("meta-data/placement/region")
    tags: dict[str, str] = {}
    for key in (APP_TAG, GENERATION_TAG):
        try:
            tags[key] = imds.get(f"meta-data/tags/instance/{key}")
        except ImdsNotFound as error:
            raise IdentityError(
                f"instance {instance_id} has no {key} tag in its metadata: it was not launched by swr,"
                " or instance metadata tags are not enabled"
            ) from error
    try:
        generation = int(tags[GENERATION_TAG])
    except ValueError as error:
        raise IdentityError(f"tag {GENERATION_TAG}={tags[GENERATION_TAG]!r} is not an integer") from error
    if not (instance_id and az and region and tags[APP_TAG]):
        raise IdentityError(f"incomplete identity from IMDS: {instance_id=} {az=} {region=} app={tags[APP_TAG]!r}")
    return Identity(instance_id=instance_id, az=az, region=region, app_tag=tags[APP_TAG], generation=generation)


# argv, timeout seconds -> completed process (stdout/stderr as text). Injectable so tests never
# mount, start or power off anything.
Runner = Callable[[Sequence[str], float], subprocess.CompletedProcess[str]]


def run_command(argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)


_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


def _unescape_mount_field(field: str) -> str:
    # /proc/mounts writes space, tab, newline and backslash as \040, \011, \012, \134.
    return _OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def mounted_at(mount_point: str, mounts_file: Path = PROC_MOUNTS) -> tuple[str, str] | None:
    """(source, fstype) of what is mounted at ``mount_point`` now, or None."""
    wanted = os.path.normpath(mount_point)
    found: tuple[str, str] | None = None
    for line in mounts_file.read_text().splitlines():
        fields = line.split()
        if len(fields) >= 3 and os.path.normpath(_unescape_mount_field(fields[1])) == wanted:
            found = (_unescape_mount_field(fields[0]), fields[2])  # last one wins: stacked mounts
    return found


def _is_this_efs(source: str, fstype: str, file_system_id: str) -> bool:
    if not fstype.startswith("nfs") and fstype != "efs":
        return False
    # efs-utils with tls mounts through a local stunnel, so /proc/mounts shows 127.0.0.1:/.
    return file_system_id in source or source.startswith("127.0.0.1:")


class LinuxHost:
    """The real instance: IMDSv2, mount(8), the configured workload command, systemctl."""

    def __init__(
        self,
        *,
        workload_command: Sequence[str] = (),
        self_fence_command: Sequence[str] = ("systemctl", "poweroff"),
        imds: ImdsClient | None = None,
        run: Runner = run_command,
        mounts_file: Path = PROC_MOUNTS,
        efs_helper: Path = EFS_MOUNT_HELPER,
        mount_timeout: float = 120.0,
        workload_timeout: float = 300.0,
    ) -> None:
        self.workload_command = tuple(workload_command)
        self.self_fence_command = tuple(self_fence_command)
        self.imds = imds or ImdsClient()
        self._run = run
        self.mounts_file = mounts_file
        self.efs_helper = efs_helper
        # Bounded well below the workflow's heartbeat timeout, so a hung mount is reported.
        self.mount_timeout = mount_timeout
        self.workload_timeout = workload_timeout

    def identity(self) -> Identity:
        return read_identity(self.imds)

    def mount_command(self, file_system_id: str, mount_point: str, region: str) -> list[str]:
        # Only through efs-utils, with TLS and the instance role (IAM): a plain NFS mount would
        # carry the data unencrypted and pass no identity, so a file system policy requiring
        # both (infra/efs-file-system-policy.json) could not admit it, and must not be bypassed.
        if not self.efs_helper.exists():
            raise OSError(
                f"{self.efs_helper} not found: swr mounts EFS only with TLS and IAM through amazon-efs-utils;"
                " install it on the AMI (the boot gate does not fall back to plain NFS)"
            )
        return ["mount", "-t", "efs", "-o", "tls,iam", f"{file_system_id}:/", mount_point]

    def mount_efs(self, file_system_id: str, mount_point: str, region: str) -> None:
        existing = mounted_at(mount_point, self.mounts_file)
        if existing is not None:
            source, fstype = existing
            if _is_this_efs(source, fstype, file_system_id):
                log.info("%s already mounted at %s (%s %s)", file_system_id, mount_point, fstype, source)
                return
            raise OSError(
                f"{mount_point} already has {source} ({fstype}) mounted; not mounting {file_system_id} over it"
            )
        Path(mount_point).mkdir(parents=True, exist_ok=True)
        argv = self.mount_command(file_system_id, mount_point, region)
        result = self._run(argv, self.mount_timeout)
        if result.returncode != 0:
            raise OSError(f"{' '.join(argv)} failed (exit {result.returncode}): {_tail(result)}")
        if mounted_at(mount_point, self.mounts_file) is None:
            raise OSError(f"{' '.join(argv)} exited 0 but nothing is mounted at {mount_point}")

    def start_workload(self) -> None:
        if not self.workload_command:
            log.info("no workload command configured: RMS is started by its own unit after this one")
            return
        result = self._run(self.workload_command, self.workload_timeout)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(self.workload_command)} failed (exit {result.returncode}): {_tail(result)}")

    def self_fence(self, reason: str) -> None:
        if not self.self_fence_command:
            log.critical("self-fence is disabled in the configuration; this instance is NOT fenced: %s", reason)
            return
        log.critical("self-fence: %s; running %s", reason, " ".join(self.self_fence_command))
        result = self._run(self.self_fence_command, 60.0)
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(self.self_fence_command)} failed (exit {result.returncode}): {_tail(result)}"
            )


def _tail(result: subprocess.CompletedProcess[str], limit: int = 500) -> str:
    text = (result.stderr or result.stdout or "").strip()
    return text[-limit:] or "no output"
