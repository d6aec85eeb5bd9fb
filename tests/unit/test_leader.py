"""Leader election's decisions and its loop, with a Lease store that is a plain object."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import pytest

from gitstage.operator.leader import (
    ElectionSettings,
    Leadership,
    LeaseView,
    Step,
    elect,
    next_step,
)

NOW = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("lease", "step"),
    [
        (None, Step.CREATE),
        (LeaseView("me", NOW - timedelta(seconds=30), 15), Step.RENEW),
        (LeaseView("other", NOW - timedelta(seconds=5), 15), Step.STANDBY),
        (LeaseView("other", NOW - timedelta(seconds=15), 15), Step.ACQUIRE),
        (LeaseView(None, None, 15), Step.ACQUIRE),
    ],
)
def test_next_step(lease: LeaseView | None, step: Step) -> None:
    assert next_step(lease, "me", NOW) is step


class Rounds:
    """A store answering each round from a script: True holds the Lease, an exception fails."""

    def __init__(self, answers: list[bool | Exception]) -> None:
        self.answers = answers
        self.calls = 0

    def round(self, now: datetime) -> bool:
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        if isinstance(answer, Exception):
            raise answer
        return answer


SETTINGS = ElectionSettings("gitstage-system", "gitstage-operator", "me", 1, 0.01)


def test_a_standby_becomes_leader_and_wakes_the_workers() -> None:
    leadership = Leadership(leader=False)
    woken: list[str] = []
    leadership.on_elected.append(lambda: woken.append("all"))
    store = Rounds([False, False, True])

    async def run() -> None:
        task = asyncio.create_task(elect(SETTINGS, leadership, lambda: None, store))  # type: ignore[arg-type]
        deadline = asyncio.get_running_loop().time() + 5
        while not leadership.leader:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(run())
    assert woken == ["all"]
    assert store.calls >= 3


def test_a_leader_that_cannot_renew_stops_before_the_lease_expires() -> None:
    leadership = Leadership()
    lost: list[bool] = []
    store = Rounds([True, RuntimeError("API server unreachable")])

    async def run() -> None:
        await asyncio.wait_for(elect(SETTINGS, leadership, lambda: lost.append(True), store), 5)  # type: ignore[arg-type]

    asyncio.run(run())
    assert lost == [True]
    assert leadership.leader is False


class HangingRounds(Rounds):
    """Holds the Lease once, then every round hangs (an API server that went silent)."""

    def __init__(self) -> None:
        super().__init__([True])
        self.release = threading.Event()

    def round(self, now: datetime) -> bool:
        if self.calls:
            self.release.wait(30)
            return False
        return super().round(now)


def test_a_leader_whose_renewal_hangs_stops_before_the_lease_expires() -> None:
    leadership = Leadership()
    lost: list[bool] = []
    store = HangingRounds()

    async def run() -> None:
        stop = lambda: lost.append(True)  # noqa: E731
        try:
            await asyncio.wait_for(elect(SETTINGS, leadership, stop, store), 5)  # type: ignore[arg-type]
        finally:
            store.release.set()  # the hung thread ends before asyncio.run waits for it

    asyncio.run(run())
    assert lost == [True]
    assert leadership.leader is False


def test_without_election_a_replica_always_leads() -> None:
    assert Leadership().leader is True
