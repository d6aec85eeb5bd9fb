"""The collector is paused during a read and left as it was found."""

from __future__ import annotations

import gc

import pytest

from gitstage.adapters.git.gc_pause import gc_paused


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
