"""moto's own response layer, for every service: the serializer looks up each member's aliases
once (patch 37), a response class's methods are listed once (patch 38), and a request's URL is
routed to its service's handler once (patch 47)."""

from __future__ import annotations

from typing import Any

from swr.emulator.moto_bridge._state import _Patches, _require

# --------------------------------------------------------------------------------------------------
# 37. The response serializer looks up each member's aliases once
# --------------------------------------------------------------------------------------------------


_possible_keys: dict[tuple[Any, ...], tuple[str, ...]] = {}


_transform_of: dict[tuple[int, int, str], Any] = {}  # (a class's transformer table, its size, key path)


def _patch_serializer_alias_cache(p: _Patches) -> None:
    from moto.core import serialize
    from moto.core.utils import get_value

    picker_call = _require(serialize.AttributePicker, "__call__")
    serializer_get_value = _require(serialize.ResponseSerializer, "get_value")
    default_providers = serialize.DEFAULT_ALIAS_PROVIDERS
    missing = serialize.MISSING

    def cache_key(picker: Any, obj: Any, key: str, shape: Any) -> tuple[Any, ...] | None:
        if picker.alias_providers is not default_providers or "Meta" in getattr(obj, "__dict__", ()):
            return None  # aliases of its own, or an alias set on one object rather than its class
        # The aliases depend only on these: the picker's kind, the object's class (its Meta, its
        # name), the member's shape and the structure it sits in now (moto re-parents shared shapes).
        return (type(picker), type(obj), shape, getattr(shape, "parent", None), key)

    def pick(obj: Any, possible: tuple[str, ...]) -> Any:
        if type(obj) is dict:  # most results are plain dicts: get_value's checks cost more than the lookup
            for possible_key in possible:
                if "." not in possible_key:
                    if possible_key in obj:
                        return obj[possible_key]
                elif (found := get_value(obj, possible_key, missing)) is not missing:
                    return found
            return None
        for possible_key in possible:
            found = get_value(obj, possible_key, missing)
            if found is not missing:
                return found
        return None

    def call(self: Any, context: Any) -> Any:
        key = cache_key(self, context.obj, context.key, context.shape)
        if key is None:
            return picker_call(self, context)
        possible = _possible_keys.get(key)
        if possible is None:
            possible = _possible_keys[key] = tuple(self.get_possible_keys(context))
        value = pick(context.obj, possible)
        transformers = self.response_transformers
        if not transformers:
            return value
        # The first transform whose path ends the member's key path, found once per path (EC2's
        # table is long, and a DescribeInstances response has thousands of members).
        key_path = f"{context.key_path}.{context.key}"
        found_key = (id(transformers), len(transformers), key_path)  # class tables; one grows at run time
        found = _transform_of.get(found_key, missing)
        if found is missing:
            found = _transform_of[found_key] = next(
                (t for path, t in transformers.items() if key_path.endswith(path)), None
            )
        return found(value) if found is not None else value

    def fast_get_value(self: Any, value: Any, key: str, shape: Any) -> Any:
        # A known member, for a picker without transforms, needs no context (nor its key path).
        picker = self._value_picker
        if isinstance(picker, serialize.AttributePicker) and not picker.response_transformers:
            found_key = cache_key(picker, value, key, shape)
            possible = _possible_keys.get(found_key) if found_key is not None else None
            if possible is not None:
                return pick(value, possible)
        return serializer_get_value(self, value, key, shape)

    p.set(serialize.AttributePicker, "__call__", call)
    p.set(serialize.ResponseSerializer, "get_value", fast_get_value)


# --------------------------------------------------------------------------------------------------
# 38. A response class's method names are listed once
# --------------------------------------------------------------------------------------------------


def _patch_response_method_names(p: _Patches) -> None:
    from moto.core import responses

    listed = _require(responses, "method_names_from_class")
    # Per bridge: the patches above are all installed by now, so a class's methods stay as listed.
    names: dict[type, list[str]] = {}

    def method_names_from_class(clazz: Any) -> list[str]:
        found = names.get(clazz)
        if found is None:
            found = names[clazz] = listed(clazz)
        return list(found)

    p.set(responses, "method_names_from_class", method_names_from_class)


# --------------------------------------------------------------------------------------------------
# 47. A request URL is routed to its handler once
# --------------------------------------------------------------------------------------------------
# For every request, moto's stubber matches the URL against each service's pattern in turn, then
# rebuilds the matched backend's URL table (url_bases times url_paths, formatted anew) and
# compiles each entry until one matches: more than moto's handling of a small call. The handler
# a URL leads to is a module-level function of the service's urls.py, the same for every
# request, so it is found once per URL here. What moto does around the handler (the normalized
# request, the recorder, HTTP exceptions) is unchanged; a URL moto would pass through, refuse or
# answer with 404 always goes through moto's own code.

_ROUTES_KEPT = 4096  # paths carry names and ids (Lambda functions, mount targets): bounded


def _route(clean_url: str) -> Any:
    """The handler moto's stubber would call for this URL, or None where it would not call one."""
    import re

    import moto.backends as backends
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.core.base_backend import BackendDict
    from moto.core.botocore_stubber import backend_index, passthrough_service, service_whitelisted

    for service, pattern in backend_index.backend_url_patterns:
        if not pattern.match(clean_url):
            continue
        if passthrough_service(service) or not service_whitelisted(service):
            return None
        backend_dict = backends.get_backend(service)  # type: ignore[call-overload]
        if isinstance(backend_dict, BackendDict):
            accounts = backend_dict[DEFAULT_ACCOUNT_ID]
            backend = accounts["us-east-1"] if "us-east-1" in accounts else accounts["aws"]
        else:
            backend = backend_dict["global"]
        for url, handler in backend.urls.items():
            if re.compile(url).match(clean_url):
                return handler
    return None


def _patch_stubber_routes(p: _Patches) -> None:
    from moto.core import botocore_stubber
    from moto.core.exceptions import HTTPException
    from moto.core.request import normalize_request
    from moto.moto_api import recorder

    process_request = _require(botocore_stubber.BotocoreStubber, "process_request")
    routes: dict[str, Any] = {}

    def routed_process_request(self: Any, request: Any) -> Any:
        parsed_url, _ = botocore_stubber.get_equivalent_url_in_aws_domain(request.url)
        clean_url = f"{parsed_url.scheme}://{parsed_url.netloc}{parsed_url.path}"
        handler = routes.get(clean_url)
        if handler is None:
            if botocore_stubber.passthrough_url(clean_url) or (handler := _route(clean_url)) is None:
                return process_request(self, request)
            if len(routes) >= _ROUTES_KEPT:
                routes.clear()
            routes[clean_url] = handler
        normalized_request = normalize_request(request)
        try:
            recorder._record_request(normalized_request)
            status, headers, body = handler(normalized_request, normalized_request.raw_url, normalized_request.headers)
        except HTTPException as e:
            status, headers, body = e.code, e.get_headers(), e.get_body()
        return status, headers, body

    p.set(botocore_stubber.BotocoreStubber, "process_request", routed_process_request)
