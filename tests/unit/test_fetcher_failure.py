"""What the operator reads from a fetcher init container's status (real pods report these)."""

from __future__ import annotations

from kubernetes import client

from gitstage.adapters.kube.deployments import _container_failure


def status(
    state: client.V1ContainerState, last: client.V1ContainerState | None = None, restarts: int = 0
) -> client.V1ContainerStatus:
    return client.V1ContainerStatus(
        name="gitstage-fetch",
        image="gitstage:test",
        image_id="",
        ready=False,
        restart_count=restarts,
        state=state,
        last_state=last or client.V1ContainerState(),
    )


def terminated(
    code: int, message: str | None = None, reason: str = "Error"
) -> client.V1ContainerState:
    return client.V1ContainerState(
        terminated=client.V1ContainerStateTerminated(exit_code=code, message=message, reason=reason)
    )


def test_a_failed_fetch_reports_the_fetchers_own_line() -> None:
    said = terminated(4, "gitstage: error: models/fraud.bin is not in commit 1234567\n")
    assert _container_failure(status(said)) == (
        "fetcher exited 4: gitstage: error: models/fraud.bin is not in commit 1234567"
    )


def test_a_crash_loop_reports_the_last_exit_and_the_restarts() -> None:
    waiting = client.V1ContainerState(
        waiting=client.V1ContainerStateWaiting(reason="CrashLoopBackOff", message="back-off 20s")
    )
    assert _container_failure(status(waiting, terminated(137), restarts=2)) == (
        "fetcher exited 137, 2 restarts: Error"
    )


def test_a_fetcher_running_again_after_a_kill_is_a_retry_not_a_failure() -> None:
    running = client.V1ContainerState(running=client.V1ContainerStateRunning())
    assert _container_failure(status(running, terminated(137), restarts=1)) is None


def test_a_completed_fetch_and_a_pending_start_are_not_failures() -> None:
    assert _container_failure(status(terminated(0, reason="Completed"))) is None
    pending = client.V1ContainerState(
        waiting=client.V1ContainerStateWaiting(reason="PodInitializing")
    )
    assert _container_failure(status(pending)) is None
    pulling = client.V1ContainerState(
        waiting=client.V1ContainerStateWaiting(reason="ErrImageNeverPull", message="not present")
    )
    assert _container_failure(status(pulling)) == "fetcher ErrImageNeverPull: not present"
