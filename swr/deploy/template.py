"""Templates read as CloudFormation reads them: YAML or JSON, short-form intrinsics, no
duplicate keys, and a Resources mapping."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import yaml

from swr.deploy.model import TemplateInvalid

# libyaml's parser where PyYAML was built with it (its wheels are): the same constructors and
# resolvers as the pure-Python SafeLoader, about ten times faster on swr's template.
_SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _CfnLoader(_SAFE_LOADER):  # type: ignore[misc,valid-type]
    """YAML as CloudFormation reads it: short-form intrinsics (!Ref, !Sub, !GetAtt a.b),
    dates left as strings (an IAM policy's Version: 2012-10-17 must stay a string), and
    duplicate keys refused instead of silently keeping the last one."""

    yaml_implicit_resolvers: ClassVar[dict[Any, list[tuple[str, Any]]]] = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


def _construct_mapping(loader: _CfnLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
        if key in mapping:
            raise TemplateInvalid(f"duplicate key {key!r} at line {key_node.start_mark.line + 1}")
        mapping[key] = loader.construct_object(value_node, deep=True)  # type: ignore[no-untyped-call]
    return mapping


def _install_intrinsics() -> None:
    from samtranslator.yaml_helper import intrinsics_multi_constructor

    _CfnLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
    _CfnLoader.add_multi_constructor("!", intrinsics_multi_constructor)


_install_intrinsics()


def load_template(path: Path) -> dict[str, Any]:
    """A CloudFormation / SAM template from a YAML or JSON file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise TemplateInvalid(f"cannot read template {path}: {error.strerror or error}") from None
    try:
        template = yaml.load(text, Loader=_CfnLoader)  # a SafeLoader subclass
    except yaml.YAMLError as error:
        raise TemplateInvalid(f"{path} is not valid YAML or JSON: {error}") from None
    if not isinstance(template, dict) or not isinstance(template.get("Resources"), dict):
        raise TemplateInvalid(f"{path} is not a CloudFormation template: no Resources mapping")
    return template


def parse_body(body: str) -> dict[str, Any]:
    """A template body (JSON or YAML) as a mapping."""
    try:
        # JSON (what swr sends after the transform) read as JSON: much faster than as YAML.
        parsed = json.loads(body, object_pairs_hook=_refuse_duplicate_keys)
    except json.JSONDecodeError:
        try:
            parsed = yaml.load(body, Loader=_CfnLoader)  # a SafeLoader subclass
        except yaml.YAMLError as error:
            raise TemplateInvalid(f"the template body is not valid JSON or YAML: {error}") from None
    if not isinstance(parsed, dict):
        raise TemplateInvalid("the template body is not a mapping")
    return parsed


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    mapping: dict[str, Any] = {}
    for key, value in pairs:
        if key in mapping:
            raise TemplateInvalid(f"duplicate key {key!r} in the template body")
        mapping[key] = value
    return mapping
