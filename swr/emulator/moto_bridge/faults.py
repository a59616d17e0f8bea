"""Patch 9: API fault injection, and the errors the bridge answers with in a service's own protocol."""

from __future__ import annotations

import json
from typing import Any

from swr.emulator.moto_bridge._state import _hooks, _Patches, _require, note_backends_changed
from swr.emulator.moto_bridge.hooks import _no_fault

# --------------------------------------------------------------------------------------------------
# 9. API fault injection
# --------------------------------------------------------------------------------------------------


_error_class: type[Exception] | None = None


def _emulator_error(code: str, message: str) -> Exception:
    """A moto ServiceException defined outside moto: moto looks up the error model of a moto-made
    exception by its module's service name, which fails for moto.core itself."""
    global _error_class
    if _error_class is None:
        from moto.core.exceptions import ServiceException

        class _EmulatorError(ServiceException):
            pass

        _error_class = _EmulatorError
    return _error_class(code, message)


def _request_params(response: Any, action: str) -> dict[str, Any]:
    """Top-level request params, parsed by moto's own protocol parsers from the botocore model."""
    params = vars(response).get("params")
    if params is None:
        own = vars(response)
        try:
            response.parse_parameters(response.normalized_request)
            params = response.params
        except Exception:
            params = None
        finally:
            own.pop("params", None)  # leave the response object as moto made it
    if params is None:
        try:
            body = json.loads(response.body) if response.body else None
        except (TypeError, ValueError):
            body = None
        if isinstance(body, dict):
            params = body
        else:
            params = {k: v[0] if isinstance(v, list) and len(v) == 1 else v for k, v in response.querystring.items()}
    return dict(params)


_READS = ("Describe", "Get", "List")  # AWS's read-only verbs, which change no resource


def _patch_fault_injection(p: _Patches) -> None:
    from moto.core.responses import ActionResult, BaseResponse

    original = _require(BaseResponse, "call_action")

    def call_action(self: Any) -> Any:
        # Every moto service (in-process stub and server) dispatches each request through here;
        # any but a read may change the backends.
        try:
            action = self._get_action()
        except Exception:  # let moto report whatever it reports for such a request
            action = None
        if action and str(action).startswith(_READS):
            return _call_action(self, action)
        note_backends_changed()
        try:
            return _call_action(self, action)
        finally:
            note_backends_changed()

    def _call_action(self: Any, action: str | None) -> Any:
        hooks = _hooks()
        if hooks is None or hooks.fault_for is _no_fault or not action:
            return original(self)
        fault = hooks.fault_for(self.boto3_service_name, action, _request_params(self, action))
        if fault is None:
            return original(self)
        # Serialise like a moto service error, in the service's own protocol; then force the status.
        _, headers, body = self.serialized(ActionResult(_emulator_error(fault.code, fault.message)))
        headers, body = self._enrich_response(headers, body)
        return fault.status, headers, body

    p.set(BaseResponse, "call_action", call_action)
