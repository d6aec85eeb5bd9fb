"""Conformance fixtures: one `show` runner per tool (gto, the oracle; and gitstage)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conformance.runners import (
    Show,
    gitstage_unavailable,
    memoized_gto_state,
    run_gitstage_inprocess,
    run_gto,
)


@pytest.fixture(params=["gto", "gitstage"])
def show(request: pytest.FixtureRequest) -> Iterator[Show]:
    """`<tool> show ARGS -r REPO`. Repositories must not change once shown (state is memoized)."""
    if request.param == "gto":
        with memoized_gto_state():
            yield run_gto
        return
    reason = gitstage_unavailable()
    if reason:
        pytest.skip(reason)
    yield run_gitstage_inprocess
