"""A minimal IMDSv2 client (stdlib only): a session token from ``PUT /latest/api/token``,
then GETs that carry it. Replacements are launched with ``HttpTokens=required``, so IMDSv1
is never tried.

The HTTP call is injectable (``opener``) so tests can check the exact requests.
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable

log = logging.getLogger("swr-boot-gate")

BASE_URL = "http://169.254.169.254"
TOKEN_PATH = "/latest/api/token"
TOKEN_TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
TOKEN_TTL_SECONDS = 21600

# (request, timeout seconds) -> response body. Raises urllib.error.HTTPError for a non-2xx
# status and OSError (URLError, timeouts) when the service cannot be reached.
Opener = Callable[[urllib.request.Request, float], bytes]


class ImdsError(RuntimeError):
    """The instance metadata service could not answer."""


class ImdsNotFound(ImdsError):
    """The path does not exist (404), e.g. a tag the instance does not carry."""


def _urllib_opener() -> Opener:
    # No proxy: an HTTP(S)_PROXY in the boot environment must not capture 169.254.169.254.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def open_(request: urllib.request.Request, timeout: float) -> bytes:
        with opener.open(request, timeout=timeout) as response:
            body: bytes = response.read()
            return body

    return open_


class ImdsClient:
    def __init__(
        self,
        opener: Opener | None = None,
        *,
        base_url: str = BASE_URL,
        timeout: float = 2.0,
        attempts: int = 3,
        backoff_seconds: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._open = opener or _urllib_opener()
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._attempts = max(1, attempts)
        self._backoff = backoff_seconds
        self._sleep = sleep
        self._token: str | None = None

    def get(self, path: str) -> str:
        """GET ``/latest/<path>`` (e.g. ``meta-data/instance-id``) as text.

        Raises ImdsNotFound for a 404 (not retried) and ImdsError when IMDS stays unreachable."""
        url = f"{self._base_url}/latest/{path.lstrip('/')}"
        last: Exception | None = None
        for attempt in range(1, self._attempts + 1):
            try:
                request = urllib.request.Request(url, method="GET", headers={TOKEN_HEADER: self._session_token()})
                return self._open(request, self._timeout).decode("utf-8").strip()
            except urllib.error.HTTPError as error:
                if error.code == 404:
                    raise ImdsNotFound(f"IMDS has no {path}") from error
                if error.code == 401:
                    self._token = None  # expired or rejected: fetch a fresh one on the next try
                last = error
            except (OSError, ImdsError) as error:
                last = error
            if attempt < self._attempts:
                log.debug("IMDS GET %s failed (%s), attempt %d of %d", path, last, attempt, self._attempts)
                self._sleep(self._backoff * attempt)
        raise ImdsError(f"IMDS GET {path} failed after {self._attempts} attempts: {last}")

    def _session_token(self) -> str:
        if self._token is None:
            request = urllib.request.Request(
                f"{self._base_url}{TOKEN_PATH}",
                method="PUT",
                headers={TOKEN_TTL_HEADER: str(TOKEN_TTL_SECONDS)},
            )
            try:
                token = self._open(request, self._timeout).decode("utf-8").strip()
            except OSError as error:  # HTTPError and URLError included
                raise ImdsError(f"IMDSv2 token request failed: {error}") from error
            if not token:
                raise ImdsError("IMDSv2 returned an empty token")
            self._token = token
        return self._token
