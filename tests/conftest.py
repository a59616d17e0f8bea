"""Every test: a step's call the emulator refused for want of a permission (bridge patch 42)
fails the test, even where the step handled the refusal (a best-effort call, say)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from swr.emulator import moto_bridge


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "refusals_expected: the test removes permissions on purpose")


@pytest.fixture(autouse=True)
def no_step_call_refused(request: pytest.FixtureRequest) -> Iterator[None]:
    moto_bridge.denials.clear()
    yield
    refused = list(dict.fromkeys(moto_bridge.denials))
    moto_bridge.denials.clear()
    if refused and request.node.get_closest_marker("refusals_expected") is None:
        pytest.fail("a step's call was refused for want of a permission:\n" + "\n".join(refused), pytrace=False)
