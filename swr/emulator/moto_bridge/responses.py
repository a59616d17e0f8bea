"""moto's own response layer, for every service: the serializer looks up each member's aliases
once (patch 37), and a response class's methods are listed once (patch 38)."""

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
