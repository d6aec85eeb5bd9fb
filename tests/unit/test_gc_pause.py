"""The collector is paused during a read and left as it was found."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from gitstage.adapters.git.gc_pause import (
    collect_before_keeping,
    gc_paused,
    keep_out_of_collections,
)


def test_paused_inside_and_restored_after_an_error() -> None:
    seen: list[bool] = []

    def fail_inside() -> None:
        with gc_paused():
            seen.append(gc.isenabled())
            raise RuntimeError("boom")

    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        fail_inside()
    assert seen == [False]
    assert gc.isenabled()


def test_nested_pauses_and_a_collector_disabled_by_the_caller() -> None:
    with gc_paused():
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner pause found it disabled: it leaves it so
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


class _Node:
    """A cycle's member (instances can be weakly referenced, dicts cannot)."""

    def __init__(self) -> None:
        self.other: _Node | None = None


def garbage_cycle() -> weakref.ref[_Node]:
    first, second = _Node(), _Node()
    first.other, second.other = second, first
    return weakref.ref(first)


@pytest.fixture
def frozen_then_released() -> Iterator[None]:
    yield
    gc.unfreeze()  # the other tests' objects back within the collector's reach
    gc.collect()


@pytest.mark.usefixtures("frozen_then_released")
def test_a_frozen_garbage_cycle_is_never_collected() -> None:
    """Why the collection before keeping: without it, freezing keeps garbage for good."""
    gc.disable()
    try:
        cycle = garbage_cycle()
        keep_out_of_collections()
        gc.collect()
        assert cycle() is not None
    finally:
        gc.enable()


@pytest.mark.usefixtures("frozen_then_released")
def test_garbage_alive_before_a_kept_read_is_collected_not_frozen() -> None:
    gc.disable()  # as if the cycle were made just before a read, between two collections
    try:
        cycle = garbage_cycle()
        collect_before_keeping()
        keep_out_of_collections()
        assert cycle() is None
    finally:
        gc.enable()
