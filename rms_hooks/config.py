"""The hooks' shared configuration file, ``/etc/swr/hooks.json``, and the one loader that
reads it for every hook (boot gate, fault notifier, heartbeat).

The file is one JSON object; each hook takes the keys it knows and ignores the rest, and
environment variables override the file. A hook that needs a key the file and the
environment both lack fails with ConfigError, whose message names the key, the variable and
the file, so an operator can act on it.

Keys of the fault notifier and the heartbeat (``HooksConfig``; the boot gate's are in
``rms_hooks.boot_gate``):

  app                         SWR_APP                       required
  region                      AWS_REGION                    default: file, AWS_DEFAULT_REGION, IMDS
  instance_id                 SWR_INSTANCE_ID               default: this instance, from IMDSv2
  user_application            SWR_USER_APPLICATION          the RMS userApplication (heartbeat, notifier)
  event_bus_name              SWR_EVENT_BUS_NAME            default "default"
  spool_path                  SWR_SPOOL_PATH                default /var/spool/swr/faults.jsonl
  publish_timeout_seconds     SWR_PUBLISH_TIMEOUT_SECONDS   default 20: retries stop after this
  metric_namespace            SWR_METRIC_NAMESPACE          default "swr" (the stack's NamePrefix)
  metric_interval_seconds     SWR_METRIC_INTERVAL_SECONDS   default 20, at most 30
  status_command              SWR_STATUS_COMMAND            default "hvassert -s {user_application} Online"
  log_level                   SWR_LOG_LEVEL                 default INFO
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shlex
import sys
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_SPOOL_PATH",
    "HEARTBEAT_ALARM_PERIOD_SECONDS",
    "ConfigError",
    "HooksConfig",
    "command",
    "configure_logging",
    "load_hooks_config",
    "read_config",
]

log = logging.getLogger("swr-hooks.config")

DEFAULT_CONFIG_PATH = Path("/etc/swr/hooks.json")
DEFAULT_SPOOL_PATH = Path("/var/spool/swr/faults.jsonl")
# swr.ops.onboarding.create_alarms: the heartbeat-missing alarm counts samples per 60 s period and
# breaches on a period with none. Two beats per period at least, so one lost call is not a failover.
HEARTBEAT_ALARM_PERIOD_SECONDS = 60
MAX_METRIC_INTERVAL_SECONDS = HEARTBEAT_ALARM_PERIOD_SECONDS / 2
# A copy of handlers.core.record.APP_NAME_PATTERN, kept here on purpose: the hooks run on the
# instance and import nothing of the control plane (handlers, swr). Change both together.
APP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ConfigError(ValueError):
    """The configuration is missing or invalid; the hook does nothing."""


def command(value: object, name: str) -> tuple[str, ...]:
    """A command from a JSON list of strings or a shell-like string."""
    if value is None:
        return ()
    if isinstance(value, str):
        try:
            return tuple(shlex.split(value))
        except ValueError as error:
            raise ConfigError(f"{name}: cannot split {value!r}: {error}") from error
    if isinstance(value, list | tuple) and all(isinstance(part, str) for part in value):
        return tuple(value)
    raise ConfigError(f"{name} must be a string or a list of strings, not {value!r}")


def read_config(
    path: Path | None,
    environ: Mapping[str, str] | None,
    *,
    fields: Collection[str],
    variables: Mapping[str, str],
    numbers: Collection[str] = (),
    required: Mapping[str, str] | None = None,
    user: str = "this hook",
) -> tuple[dict[str, Any], Path]:
    """The values of ``fields`` from the file (``path``, or the default when it exists)
    overlaid with the environment (``variables``: variable -> field); ``required`` (field ->
    variable) must end up non-empty. Returns (values, the file they came from)."""
    env = os.environ if environ is None else environ
    source = path or DEFAULT_CONFIG_PATH
    values: dict[str, Any] = {}
    if path is not None or source.exists():
        try:
            loaded = json.loads(source.read_text())
        except FileNotFoundError as error:
            raise ConfigError(f"configuration file {source} does not exist") from error
        except (OSError, ValueError) as error:
            raise ConfigError(f"configuration file {source} is not readable JSON: {error}") from error
        if not isinstance(loaded, dict):
            raise ConfigError(f"configuration file {source} must hold a JSON object")
        ignored = sorted(set(loaded) - set(fields))
        if ignored:
            log.debug("ignoring configuration keys %s does not use: %s", user, ", ".join(ignored))
        values = {key: value for key, value in loaded.items() if key in fields}
    if "region" in fields and not values.get("region") and env.get("AWS_DEFAULT_REGION"):
        values["region"] = env["AWS_DEFAULT_REGION"]
    for variable, key in variables.items():
        raw = env.get(variable)
        if not raw:  # unset or empty: an empty variable never erases a value of the file
            continue
        if key in numbers:
            try:
                values[key] = float(raw)
            except ValueError as error:
                raise ConfigError(f"{variable}={raw!r} is not a number") from error
        else:
            values[key] = raw
    missing = [
        f"{key} ({variable} or {key!r} in {source})"
        for key, variable in (required or {}).items()
        if not values.get(key)
    ]
    if missing:
        raise ConfigError(f"missing configuration: {'; '.join(missing)}")
    return values, source


@dataclass(frozen=True)
class HooksConfig:
    """What the fault notifier and the heartbeat read from the shared file."""

    app: str
    region: str = ""  # empty: the instance's own region, from IMDS
    instance_id: str = ""  # empty: this instance, from IMDS
    user_application: str = ""
    event_bus_name: str = "default"
    spool_path: Path = DEFAULT_SPOOL_PATH
    publish_timeout_seconds: float = 20.0
    metric_namespace: str = "swr"
    metric_interval_seconds: float = 20.0
    status_command: tuple[str, ...] = ("hvassert", "-s", "{user_application}", "Online")
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        if not isinstance(self.app, str) or not APP_NAME.match(self.app):
            raise ConfigError(f"app must be an application name like 'demo-app', not {self.app!r}")
        for name in ("region", "instance_id", "user_application", "event_bus_name", "metric_namespace"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"{name} must be a string, not {getattr(self, name)!r}")
        if not self.event_bus_name or not self.metric_namespace:
            raise ConfigError("event_bus_name and metric_namespace must not be empty")
        if not isinstance(self.spool_path, str | Path) or not str(self.spool_path):
            raise ConfigError(f"spool_path must be a file path, not {self.spool_path!r}")
        object.__setattr__(self, "spool_path", Path(self.spool_path))
        limits = {
            "publish_timeout_seconds": (0.0, 600.0),
            "metric_interval_seconds": (1.0, MAX_METRIC_INTERVAL_SECONDS),
        }
        for name, (low, high) in limits.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
                why = (
                    " (the heartbeat-missing alarm breaches on a 60 s period without a sample)"
                    if name == "metric_interval_seconds"
                    else ""
                )
                raise ConfigError(f"{name} must be a number of seconds from {low:g} to {high:g}{why}, not {value!r}")
        object.__setattr__(self, "status_command", command(self.status_command, "status_command"))
        if logging.getLevelName(str(self.log_level).upper()) not in range(0, 60):
            raise ConfigError(f"log_level must be DEBUG, INFO, WARNING or ERROR, not {self.log_level!r}")

    def status_argv(self) -> list[str]:
        """The status command with ``{user_application}`` filled in."""
        if not self.status_command:
            raise ConfigError("status_command is empty: the heartbeat cannot tell whether RMS is Online")
        if any("{user_application}" in part for part in self.status_command) and not self.user_application:
            raise ConfigError(
                "status_command names {user_application} but user_application is not configured"
                " (SWR_USER_APPLICATION or 'user_application' in the configuration file)"
            )
        return [part.replace("{user_application}", self.user_application) for part in self.status_command]


_HOOKS_FIELDS = {f.name for f in dataclasses.fields(HooksConfig)}
_HOOKS_ENV = {
    "SWR_APP": "app",
    "AWS_REGION": "region",
    "SWR_INSTANCE_ID": "instance_id",
    "SWR_USER_APPLICATION": "user_application",
    "SWR_EVENT_BUS_NAME": "event_bus_name",
    "SWR_SPOOL_PATH": "spool_path",
    "SWR_PUBLISH_TIMEOUT_SECONDS": "publish_timeout_seconds",
    "SWR_METRIC_NAMESPACE": "metric_namespace",
    "SWR_METRIC_INTERVAL_SECONDS": "metric_interval_seconds",
    "SWR_STATUS_COMMAND": "status_command",
    "SWR_LOG_LEVEL": "log_level",
}
_HOOKS_NUMBERS = {"publish_timeout_seconds", "metric_interval_seconds"}


def load_hooks_config(
    path: Path | None = None, environ: Mapping[str, str] | None = None, **overrides: Any
) -> HooksConfig:
    """The notifier's and heartbeat's settings; ``overrides`` (command-line options) win over
    the environment and the file. Raises ConfigError with a message an operator can act on."""
    values, source = read_config(
        path,
        environ,
        fields=_HOOKS_FIELDS,
        variables=_HOOKS_ENV,
        numbers=_HOOKS_NUMBERS,
        user="the fault notifier and heartbeat",
    )
    values.update({key: value for key, value in overrides.items() if value})
    if not values.get("app"):
        raise ConfigError(f"missing configuration: app (--app, SWR_APP or 'app' in {source})")
    try:
        return HooksConfig(**values)
    except TypeError as error:  # a value of the wrong JSON type reaching a comparison
        raise ConfigError(f"invalid configuration in {source}: {error}") from error


def configure_logging(level: str = "INFO", logger: str = "swr-hooks", stream: TextIO | None = None) -> None:
    """A hook's log lines, one a line: the notifier's and heartbeat's (loggers ``swr-hooks.*``)
    on stderr, which RMS keeps in its log and systemd sends to the journal; the boot gate
    passes its own logger and stdout. Replaces its own handler on each call so a second
    ``main()`` in one process (tests) writes to the current stream."""
    target = logging.getLogger(logger)
    for handler in [h for h in target.handlers if getattr(h, "_swr_hooks", False)]:
        target.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler._swr_hooks = True  # type: ignore[attr-defined]
    target.addHandler(handler)
    target.setLevel(level.upper())
