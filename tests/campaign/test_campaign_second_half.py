"""The second half of the CI seeds (see test_campaign.py), in a file of its own so that the
other test worker runs it."""

from __future__ import annotations

from tests.helpers.campaign import FOUND_BEFORE, SECOND_HALF, assert_no_seed_breaks_a_guarantee


def test_no_seed_of_the_second_half_breaks_a_guarantee() -> None:
    assert_no_seed_breaks_a_guarantee(SECOND_HALF)


def test_no_seed_that_once_broke_a_guarantee_breaks_one_again() -> None:
    assert_no_seed_breaks_a_guarantee(FOUND_BEFORE)
