"""KMS: key material is made once per key spec (patch 39)."""

from __future__ import annotations

from typing import Any

from swr.emulator.moto_bridge._state import _lock, _Patches, _require

# --------------------------------------------------------------------------------------------------
# 39. KMS key material once per key spec
# --------------------------------------------------------------------------------------------------

_key_material: dict[str, Any] = {}


def _patch_kms_key_material(p: _Patches) -> None:
    from moto.kms import models as kms_models

    generate = _require(kms_models, "generate_private_key")

    def generate_private_key(key_spec: str) -> Any:
        with _lock:
            if key_spec not in _key_material:
                _key_material[key_spec] = generate(key_spec)
            return _key_material[key_spec]

    p.set(kms_models, "generate_private_key", generate_private_key)
