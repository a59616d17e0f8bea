"""Which rounds of the fence loop start with CutOffInstances (ConfirmFence's cut_again)."""

from __future__ import annotations

import pytest

from handlers.core.fence.confirmation import cut_again
from handlers.core.steps import CutOff, CutOffRound, InstanceCut, PathCut

DRAINING = PathCut(path="clients via demo-app", cut=False, how="draining from demo-app", settling=True)
DELETING = PathCut(path="efs via fsmt-1", cut=False, how="deleting", settling=True)
DENIED = PathCut(path="efs via fsmt-2", cut=True, how="network ACL acl-1 denies it (rule 1)")
OPEN = PathCut(path="efs via fsmt-3", cut=False, how="network ACL acl-1 of subnet-3 lets 10.0.0.5 reach it")


def cutoff(*problems: str) -> CutOffRound:
    return CutOffRound(instances=[CutOff(instance_id="i-old", state="running", problems=list(problems))])


def seen(state: str, *paths: PathCut, note: str = "") -> list[InstanceCut]:
    return [InstanceCut(instance_id="i-old", state=state, cut=False, paths=list(paths), note=note)]


def test_a_clean_round_while_the_instance_shuts_down_and_its_clients_drain_only_confirms_next() -> None:
    assert cut_again(cutoff(), seen("shutting-down", DENIED, DRAINING, DELETING)) is False


@pytest.mark.parametrize(
    ("why", "last_round", "now"),
    [
        ("no round yet", None, seen("shutting-down", DRAINING)),
        ("a part failed last round", cutoff("deregister i-old: throttled"), seen("shutting-down", DRAINING)),
        ("still running: the terminate did not take", cutoff(), seen("running", DRAINING)),
        ("stopping is not a terminate under way", cutoff(), seen("stopping", DRAINING)),
        ("not read this round", cutoff(), seen("unknown", note="could not be read: throttled")),
        ("not fenced yet", cutoff(), seen("shutting-down", note="not fenced yet")),
        ("a path AWS is not closing", cutoff(), seen("shutting-down", DRAINING, OPEN)),
    ],
)
def test_anything_else_is_cut_again(why: str, last_round: CutOffRound | None, now: list[InstanceCut]) -> None:
    assert cut_again(last_round, now) is True, why


def test_an_instance_already_cut_needs_nothing_more() -> None:
    done = [InstanceCut(instance_id="i-old", state="terminated", cut=True, note="powered off (terminated)")]
    assert cut_again(cutoff(), done) is False
