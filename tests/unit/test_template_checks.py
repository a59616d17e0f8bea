"""What ``infra/template.yaml`` promises besides its IAM policies: each checkov finding it skips
is named and explained, and its Outputs are exactly what ``swr.stack.StackOutputs`` reads.

cfn-lint and checkov themselves run in ``make lint`` (offline, in their own environment), not
here: these tests stay fast and need nothing but the template.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from swr.deployer import load_template
from swr.stack import StackOutputs

TEMPLATE = load_template(Path(__file__).resolve().parents[2] / "infra" / "template.yaml")
CHECK_ID = re.compile(r"^CKV_AWS_\d+$")


def checkov_skips(template: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(resource, skip entry) for every checkov skip in the resources' Metadata."""
    return [
        (name, skip)
        for name, resource in (template.get("Resources") or {}).items()
        for skip in (((resource.get("Metadata") or {}).get("checkov") or {}).get("skip") or [])
    ]


def bad_skips(template: Mapping[str, Any]) -> list[str]:
    """Skips without a CKV_AWS_<n> id or without a reason."""
    bad = []
    for name, skip in checkov_skips(template):
        entry = skip if isinstance(skip, Mapping) else {}
        check, comment = entry.get("id"), entry.get("comment")
        if not (isinstance(check, str) and CHECK_ID.match(check)):
            bad.append(f"{name}: skip {skip!r} does not name a CKV_AWS_<n> check")
        elif not (isinstance(comment, str) and comment.strip()):
            bad.append(f"{name}: skip of {check} gives no reason")
    return bad


def test_every_checkov_skip_in_the_template_names_its_check_and_says_why():
    skips = checkov_skips(TEMPLATE)
    # 11 functions x 4, 12 log groups, the table, the queue, the bucket and the trail.
    assert len(skips) >= 50
    assert bad_skips(TEMPLATE) == []


def test_a_skip_without_an_id_or_a_reason_is_reported():
    template = {
        "Resources": {
            "Good": {"Metadata": {"checkov": {"skip": [{"id": "CKV_AWS_18", "comment": "why"}]}}},
            "NoReason": {"Metadata": {"checkov": {"skip": [{"id": "CKV_AWS_18", "comment": "  "}]}}},
            "OtherTool": {"Metadata": {"checkov": {"skip": [{"id": "CKV2_AWS_62", "comment": "why"}]}}},
            "BareId": {"Metadata": {"checkov": {"skip": ["CKV_AWS_18"]}}},
            "NoMetadata": {"Type": "AWS::SQS::Queue"},
        }
    }
    assert [line.split(":")[0] for line in bad_skips(template)] == ["NoReason", "OtherTool", "BareId"]


def test_the_template_outputs_exactly_what_swr_reads_from_a_stack():
    outputs = set(TEMPLATE["Outputs"])
    fields = set(StackOutputs.model_fields)
    assert fields - outputs == set(), "StackOutputs reads outputs the template does not declare"
    assert outputs - fields == set(), "the template declares outputs StackOutputs does not read"
