"""Configuration of the step functions, read from the environment through one model."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, Field


class Settings(BaseModel):
    table_name: str = Field(min_length=1)
    event_bus_name: str = "default"
    event_source: str = "swr.failover"
    # The workflow owns retries (backoff with full jitter, visible in the execution
    # history); the SDK's own retries stay few so they do not hide an impaired API.
    sdk_max_attempts: int = Field(default=2, ge=1, le=10)
    # The EC2 state-change rules swr points at the record's instances (handlers/core/watch.py);
    # empty where a deployment has none.
    instance_watch_rule: str = ""
    fence_release_rule: str = ""
    # The unique id of the application instances' role: with an instance's id it is the
    # aws:userid its credentials carry, which keys the permit's token (handlers/core/permits.py).
    instance_role_id: str = ""


ENV = {
    "table_name": "SWR_TABLE_NAME",
    "event_bus_name": "SWR_EVENT_BUS_NAME",
    "event_source": "SWR_EVENT_SOURCE",
    "sdk_max_attempts": "SWR_SDK_MAX_ATTEMPTS",
    "instance_watch_rule": "SWR_INSTANCE_WATCH_RULE",
    "fence_release_rule": "SWR_FENCE_RELEASE_RULE",
    "instance_role_id": "SWR_INSTANCE_ROLE_ID",
}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    values = {field: os.environ[var] for field, var in ENV.items() if os.environ.get(var)}
    return Settings.model_validate(values)
