"""The RMS fault event: what RMS's fault script publishes when a userApplication goes
Faulted. The workflow's RMS rule matches this source and detail-type.

(Retries, the local spool for an unreachable API, and the command line come with the
instance-side hooks issue; the event's shape lives here so that there is one definition.)
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

SOURCE = "swr.rms"
DETAIL_TYPE = "RMS Fault"


def fault_entry(
    app: str,
    instance_id: str,
    user_application: str,
    reason: str,
    occurred_at: datetime | None = None,
    event_bus_name: str = "default",
) -> dict[str, Any]:
    """A PutEvents entry for one fault."""
    detail = {
        "app": app,
        "instance_id": instance_id,
        "user_application": user_application,
        "reason": reason,
        "occurred_at": (occurred_at or datetime.now(tz=UTC)).isoformat(),
    }
    return {
        "Source": SOURCE,
        "DetailType": DETAIL_TYPE,
        "Detail": json.dumps(detail),
        "Resources": [instance_id],
        "EventBusName": event_bus_name,
    }


def publish(events_client: Any, entry: dict[str, Any]) -> str:
    """Publish one entry; returns the event id. Raises when EventBridge refused it."""
    response = events_client.put_events(Entries=[entry])
    result = response["Entries"][0]
    if response.get("FailedEntryCount") or "EventId" not in result:
        raise RuntimeError(
            f"EventBridge refused the RMS fault event: {result.get('ErrorCode')} {result.get('ErrorMessage')}"
        )
    return str(result["EventId"])
