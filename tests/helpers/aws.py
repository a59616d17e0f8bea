"""boto3 clients for the tests that run moto's mock_aws themselves rather than the emulator:
from one session per process, so that each service's model is read from disk once (a new
default session, which each mock_aws start leaves behind, reads it again for every client)."""

from __future__ import annotations

from typing import Any

import boto3

REGION = "ap-northeast-1"
_session: boto3.session.Session | None = None


def client(service: str, region: str = REGION, **kwargs: Any) -> Any:
    global _session
    if _session is None:
        _session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        )
    return _session.client(service, region_name=region, **kwargs)  # type: ignore[call-overload]
