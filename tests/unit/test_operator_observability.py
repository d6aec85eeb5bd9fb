"""Operator settings for the listeners, and the metrics the operator's outcomes turn into."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from gitstage.adapters.mirror.poll_types import PollRecord
from gitstage.cli.main import cli
from gitstage.operator import observability
from gitstage.operator.reconcile import Outcome, Transition
from gitstage.operator.settings import Listener, OperatorSettings, SettingsError
from gitstage.resources import v1alpha1 as v1
from tests.support.exported_metrics import samples


def test_listeners_and_secrets_from_the_environment(tmp_path: Path) -> None:
    secret_file = tmp_path / "secrets"
    secret_file.write_text("new-secret\n\nold-secret\n")
    settings = OperatorSettings.from_env(
        {
            "GITSTAGE_WEBHOOK_PORT": "8443",
            "GITSTAGE_WEBHOOK_SECRET": "env-secret\nnew-secret",
            "GITSTAGE_WEBHOOK_SECRET_FILE": str(secret_file),
            "GITSTAGE_METRICS_PORT": "0",
            "GITSTAGE_METRICS_ADDRESS": "127.0.0.1",
        }
    )
    assert settings.webhook == Listener("0.0.0.0", 8443)  # noqa: S104 - the default, in a pod
    assert settings.metrics == Listener("127.0.0.1", 0)
    assert settings.webhook_secrets == (b"env-secret", b"new-secret", b"old-secret")
    assert "secret" not in repr(settings).replace("webhook_secrets", "")
    assert OperatorSettings.from_env({}).webhook is None
    assert OperatorSettings.from_env({}).metrics is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GITSTAGE_WEBHOOK_PORT": "8443"}, "the webhook receiver needs a secret"),
        ({"GITSTAGE_METRICS_PORT": "http"}, "GITSTAGE_METRICS_PORT must be a port number"),
        ({"GITSTAGE_METRICS_PORT": "70000"}, "GITSTAGE_METRICS_PORT must be a port number"),
        (
            {"GITSTAGE_WEBHOOK_PORT": "1", "GITSTAGE_WEBHOOK_SECRET_FILE": "/no/such/file"},
            "cannot read the webhook secret file /no/such/file: No such file or directory",
        ),
    ],
)
def test_unusable_settings_are_one_line_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        OperatorSettings.from_env(env)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def state(name: str, version: str | None, commit: str | None) -> v1.DeploymentState:
    return v1.DeploymentState(
        name=name,
        artifact="churn",
        stage="prod",
        observed_version=version,
        observed_commit=commit,
    )


def test_serving_info_follows_what_the_deployments_run_and_goes_with_them() -> None:
    key = ("ns-obs", "churn")
    outcome = Outcome(
        transitions=[Transition("churn-prod", "RollingOut")],
        states=[state("churn-prod", "v2", "c2" * 20), state("churn-new", None, None)],
    )
    rollouts = dict(samples("gitstage_rollout_transitions_total"))
    observability.record_reconcile(*key, outcome)
    serving = {
        labels: value
        for labels, value in samples("gitstage_serving_info").items()
        if ("namespace", "ns-obs") in labels
    }
    expected = (
        ("artifact", "churn"),
        ("commit", "c2" * 20),
        ("deployment", "churn-prod"),
        ("namespace", "ns-obs"),
        ("registry", "churn"),
        ("stage", "prod"),
        ("version", "v2"),
    )
    assert serving == {expected: 1.0}  # nothing for a Deployment that serves nothing yet
    transition = (
        ("deployment", "churn-prod"),
        ("namespace", "ns-obs"),
        ("registry", "churn"),
        ("transition", "RollingOut"),
    )
    after = samples("gitstage_rollout_transitions_total")
    assert after[transition] == rollouts.get(transition, 0.0) + 1
    observability.record_reconcile(*key, Outcome(states=[state("churn-prod", "v1", "c1" * 20)]))
    versions = [dict(labels)["version"] for labels in samples("gitstage_serving_info")]
    assert "v1" in versions
    assert "v2" not in versions
    observability.forget(*key)
    assert not any(("namespace", "ns-obs") in labels for labels in samples("gitstage_serving_info"))


def test_polls_are_timed_and_errors_counted_per_repository() -> None:
    url = "https://git.example.com/obs/registry.git"
    repository = (("repository", url),)
    observability.record_poll(PollRecord(url, 0.2, "unchanged", None))
    observability.record_poll(PollRecord(url, 3.0, "error", "AuthenticationFailed"))
    counts = samples("gitstage_poll_duration_seconds_count")
    assert counts[repository] == 2
    assert samples("gitstage_poll_duration_seconds_sum")[repository] == pytest.approx(3.2)
    errors = samples("gitstage_poll_errors_total")
    assert errors[(("reason", "AuthenticationFailed"), ("repository", url))] == 1
    assert samples("gitstage_polls_total")[(("outcome", "error"), ("repository", url))] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--webhook-port", "8443"], "the webhook receiver needs a secret"),
        (
            ["--webhook-port", "8443", "--webhook-secret-file", "/no/such/file"],
            "cannot read the webhook secret file /no/such/file",
        ),
        (["--metrics-port", "70000"], "Invalid value for '--metrics-port'"),
    ],
)
def test_the_operator_command_refuses_unusable_listener_flags_in_one_line(
    args: list[str], message: str
) -> None:
    unset = dict.fromkeys(
        ("GITSTAGE_WEBHOOK_SECRET", "GITSTAGE_WEBHOOK_SECRET_FILE", "GITSTAGE_WEBHOOK_PORT")
    )
    result = CliRunner(env=unset).invoke(cli, ["operator", "--standalone", *args])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"gitstage: error: {message}")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output
