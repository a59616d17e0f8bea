"""The fault spool: RMS faults that could not be published yet, oldest first, on local disk.

One JSON object a line (``{"spooled_at": ..., "entry": <PutEvents entry>}``). Every change
rewrites the whole file to a temporary file in the same directory, fsyncs it and renames it
over the spool, so a crash leaves the old spool or the new one, never half of one. Callers
hold ``Spool.locked()`` for the whole read-publish-rewrite, so concurrent runs (RMS calling
the notifier while the timer flushes) take turns instead of interleaving or reordering.

A line that is not a spooled fault (it cannot come from this module, but disks and people
edit files) is moved to ``<spool>.rejected`` with a log line rather than dropped.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("swr-hooks.spool")


class SpoolError(OSError):
    """The spool could not be read or written."""


@dataclass(frozen=True)
class SpooledFault:
    entry: dict[str, Any]
    spooled_at: str

    def line(self) -> str:
        return json.dumps({"spooled_at": self.spooled_at, "entry": self.entry}, sort_keys=True)

    @property
    def detail(self) -> dict[str, Any]:
        try:
            detail = json.loads(self.entry.get("Detail", "{}"))
        except ValueError:
            return {}
        return detail if isinstance(detail, dict) else {}


class Spool:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")
        self.rejected_path = path.with_name(path.name + ".rejected")

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive use of the spool for the duration (blocks while another run holds it)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            handle = self.lock_path.open("a")
        except OSError as error:
            raise SpoolError(f"cannot lock the spool {self.path}: {error}") from error
        with handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def read(self) -> list[SpooledFault]:
        """The spooled faults, oldest first. Call with the lock held."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        except OSError as error:
            raise SpoolError(f"cannot read the spool {self.path}: {error}") from error
        faults: list[SpooledFault] = []
        rejected: list[str] = []
        for line in text.splitlines():
            if not line.strip():
                continue
            fault = _parse(line)
            if fault is None:
                rejected.append(line)
            else:
                faults.append(fault)
        if rejected:
            log.error(
                "swr-spool: %d line(s) of %s are not spooled faults; kept in %s",
                len(rejected),
                self.path,
                self.rejected_path,
            )
            with self.rejected_path.open("a") as handle:
                handle.write("".join(f"{line}\n" for line in rejected))
                handle.flush()
                os.fsync(handle.fileno())
            self.write(faults)
        return faults

    def append(self, entry: dict[str, Any]) -> SpooledFault:
        """Add a fault after the ones already spooled. Call with the lock held."""
        fault = SpooledFault(entry=entry, spooled_at=datetime.now(tz=UTC).isoformat())
        self.write([*self.read(), fault])
        return fault

    def write(self, faults: list[SpooledFault]) -> None:
        """Replace the spool's content atomically (an empty list removes the file)."""
        try:
            if not faults:
                self.path.unlink(missing_ok=True)
            else:
                descriptor, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
                try:
                    with os.fdopen(descriptor, "w") as handle:
                        handle.write("".join(f"{fault.line()}\n" for fault in faults))
                        handle.flush()
                        os.fsync(handle.fileno())
                    os.replace(temporary, self.path)
                except BaseException:
                    Path(temporary).unlink(missing_ok=True)
                    raise
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)  # the rename itself must survive a power cut
            finally:
                os.close(directory)
        except OSError as error:
            raise SpoolError(f"cannot write the spool {self.path}: {error}") from error


def _parse(line: str) -> SpooledFault | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("entry"), dict):
        return None
    return SpooledFault(entry=value["entry"], spooled_at=str(value.get("spooled_at", "")))
