"""The workflow's own events (Started / Succeeded / Failed) on EventBridge."""

from __future__ import annotations

import json
from typing import Any

from handlers.core.aws import api_call, client
from handlers.core.errors import AwsUnavailable
from handlers.core.settings import get_settings

STARTED = "Failover Started"
SUCCEEDED = "Failover Succeeded"
FAILED = "Failover Failed"


def publish(detail_type: str, detail: dict[str, Any]) -> None:
    settings = get_settings()
    # Seconds to a tenth, as the step timings are: the notification rules print them as they come.
    detail = {key: round(value, 1) if isinstance(value, float) else value for key, value in detail.items()}
    with api_call(f"publish {detail_type!r}"):
        response = client("events").put_events(
            Entries=[
                {
                    "Source": settings.event_source,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail, default=str),
                    "EventBusName": settings.event_bus_name,
                }
            ]
        )
    if response.get("FailedEntryCount"):
        entry = response["Entries"][0]
        raise AwsUnavailable(f"publish {detail_type!r}: {entry.get('ErrorCode')} {entry.get('ErrorMessage')}")
