"""The bridge's shared state: the running bridge, the record of patches, and the helpers every
patch module uses. ``_bridge`` is rebound by start() and stop(): read it as ``_state._bridge``
(or through :func:`_hooks` / :func:`_require_bridge`), never from a copy imported by name."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3

if TYPE_CHECKING:
    from swr.emulator.moto_bridge.hooks import BridgeHooks

LOG = logging.getLogger("swr.emulator.moto_bridge")  # one logger for the package, as for the module it was

# --------------------------------------------------------------------------------------------------
# Module state
# --------------------------------------------------------------------------------------------------

_FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
_MOTO_CONFIG: dict[str, Any] = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}


class _Patches:
    """Records every attribute replaced so that stop() can put moto back exactly as it was."""

    def __init__(self) -> None:
        self._undo: list[tuple[Any, str, Any, bool]] = []

    def set(self, owner: Any, name: str, value: Any) -> None:
        own = vars(owner)
        self._undo.append((owner, name, own.get(name), name in own))
        setattr(owner, name, value)

    def undo_all(self) -> None:
        while self._undo:
            owner, name, old, had = self._undo.pop()
            if had:
                setattr(owner, name, old)
            else:
                delattr(owner, name)


@dataclass
class _Bridge:
    hooks: BridgeHooks
    region: str
    mock: Any
    patches: _Patches
    saved_env: dict[str, str | None]
    server: Any = None
    server_saved_port: str | None = None
    client_tokens: dict[tuple[str, str, str], tuple[str, str]] = field(default_factory=dict)


_lock = threading.RLock()
_bridge: _Bridge | None = None
_epoch = 0  # moves on whenever moto's backends may have changed


def note_backends_changed() -> None:
    """Every request moto handles and every change the bridge makes to its backends directly
    calls this, so that a reader can keep what it derived from them while the epoch stands."""
    global _epoch
    _epoch += 1


def backends_epoch() -> int:
    return _epoch


def _hooks() -> BridgeHooks | None:
    bridge = _bridge
    return None if bridge is None else bridge.hooks


def _require_bridge() -> _Bridge:
    bridge = _bridge
    if bridge is None:
        raise RuntimeError("moto bridge not started")
    return bridge


def _restore_env(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _require(owner: Any, name: str, expected: Any = None) -> Any:
    """Fail loudly when a moto internal we patch has moved."""
    if name not in vars(owner):
        raise RuntimeError(f"moto internals moved: {owner!r} has no {name!r} (moto bridge needs update)")
    value = vars(owner)[name]
    if expected is not None and value is not expected:
        raise RuntimeError(f"moto internals moved: {owner!r}.{name} is {value!r}, expected {expected!r}")
    return value


def _api_client(service: str, region: str) -> Any:
    return boto3.client(service, region_name=region)  # type: ignore[call-overload]
