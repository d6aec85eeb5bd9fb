"""The operator's periodic malloc_trim: it runs off the loop, repeatedly, and stops when asked."""

from __future__ import annotations

import asyncio
import threading

import pytest

from gitstage.operator import trim


def test_glibc_trim_is_found_and_returns_memory() -> None:
    found = trim.malloc_trim()
    assert found is not None  # the operator's image and this machine run glibc
    blocks = [bytearray(4096) for _ in range(20_000)]  # 80 MB in small chunks, then freed
    del blocks
    assert found(0) in (0, 1)


def test_trims_repeat_in_a_thread_until_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    loop_thread = threading.get_ident()

    def counting(pad: int) -> int:
        assert threading.get_ident() != loop_thread  # never on the event loop
        calls.append(pad)
        return 1

    monkeypatch.setattr(trim, "malloc_trim", lambda: counting)

    async def scenario() -> None:
        task = asyncio.create_task(trim.trim_periodically(0.01))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while len(calls) < 3:
            assert loop.time() < deadline, "no third trim within 10 s"
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert calls[:3] == [0, 0, 0]


def test_without_malloc_trim_the_task_ends_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trim, "malloc_trim", lambda: None)
    asyncio.run(asyncio.wait_for(trim.trim_periodically(0.01), 5))
