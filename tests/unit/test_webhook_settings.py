"""The webhook limits: defaults, the environment and `gitstage operator`'s flags, the rejection
log's window (a fake clock), and the chart's values into the operator's arguments."""

from __future__ import annotations

import logging
import resource

import pytest
from click.testing import CliRunner

from gitstage.cli.main import cli
from gitstage.operator.rejections import RejectionLog, one_line
from gitstage.operator.settings import (
    DESCRIPTOR_RESERVE,
    LISTEN_BACKLOG,
    SettingsError,
    WebhookLimits,
)


def test_defaults_and_every_setting_from_the_environment() -> None:
    assert WebhookLimits.from_env({}) == WebhookLimits(10.0, 10.0, 30.0, 256, 16384)
    env = {
        "GITSTAGE_WEBHOOK_HEADER_TIMEOUT": "2.5",
        "GITSTAGE_WEBHOOK_BODY_TIMEOUT": "7",
        "GITSTAGE_WEBHOOK_IDLE_TIMEOUT": " 60 ",
        "GITSTAGE_WEBHOOK_MAX_CONNECTIONS": "64",
        "GITSTAGE_WEBHOOK_MAX_HEADER_BYTES": "8192",
    }
    assert WebhookLimits.from_env(env) == WebhookLimits(2.5, 7.0, 60.0, 64, 8192)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("HEADER_TIMEOUT", "0", "GITSTAGE_WEBHOOK_HEADER_TIMEOUT must be seconds above 0"),
        ("BODY_TIMEOUT", "ten", "GITSTAGE_WEBHOOK_BODY_TIMEOUT must be seconds above 0"),
        ("IDLE_TIMEOUT", "3601", "and at most 3600, got '3601'"),
        ("IDLE_TIMEOUT", "nan", "GITSTAGE_WEBHOOK_IDLE_TIMEOUT must be seconds"),
        ("MAX_CONNECTIONS", "0", "GITSTAGE_WEBHOOK_MAX_CONNECTIONS must be a whole number"),
        ("MAX_HEADER_BYTES", "512", "from 1024 to 1048576, got '512'"),
    ],
)
def test_a_bad_limit_is_a_one_line_error(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")) as caught:
        WebhookLimits.from_env({f"GITSTAGE_WEBHOOK_{name}": value})
    assert "\n" not in str(caught.value)


def test_more_connections_than_the_descriptors_allow_is_refused() -> None:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    kept = DESCRIPTOR_RESERVE + LISTEN_BACKLOG
    if soft == resource.RLIM_INFINITY or soft - kept > 65535:
        pytest.skip(f"the open-file limit ({soft}) allows any connection limit")
    too_many = str(soft - kept + 1)
    with pytest.raises(SettingsError, match=f"the open-file limit is {soft}"):
        WebhookLimits.from_env({"GITSTAGE_WEBHOOK_MAX_CONNECTIONS": too_many})


def test_the_operator_command_refuses_a_bad_limit_in_one_line() -> None:
    result = CliRunner().invoke(cli, ["operator", "--webhook-header-timeout=0"])
    assert result.exit_code == 2
    assert "0<x<=3600" in result.output
    result = CliRunner().invoke(cli, ["operator"], env={"GITSTAGE_WEBHOOK_MAX_CONNECTIONS": "0"})
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_help_documents_every_limit() -> None:
    result = CliRunner().invoke(cli, ["operator", "--help"])
    text = " ".join(result.output.split())
    for flag in ("header-timeout", "body-timeout", "idle-timeout", "max-connections"):
        assert f"--webhook-{flag}" in text
    assert "--webhook-max-header-bytes" in text


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_rejection_log_writes_a_burst_then_one_count_per_window(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    rejections = RejectionLog(logging.getLogger("test.rejections"), window=60, burst=3, clock=clock)
    with caplog.at_level(logging.INFO, logger="test.rejections"):
        for number in range(1000):
            rejections.note("401" if number % 2 else "header_timeout", f"request {number}")
        rejections.flush()  # the window is not over: nothing yet
        assert [r.getMessage() for r in caplog.records] == [
            "webhook request rejected (header_timeout): request 0",
            "webhook request rejected (401): request 1",
            "webhook request rejected (header_timeout): request 2",
        ]
        clock.now += 61
        rejections.flush()
        assert caplog.records[-1].getMessage() == (
            "webhook: 997 more requests rejected in the last 61 s (401 499, header_timeout 498)"
        )
        assert caplog.records[-1].levelno == logging.WARNING
        rejections.note("413", "next window")  # a new window logs again
        rejections.flush(final=True)
    assert caplog.records[-1].getMessage() == "webhook request rejected (413): next window"
    assert len(caplog.records) == 5


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Invalid header token:\n\n  b'X\\x01'\n   ^", "Invalid header token"),
        ("\n  first\nsecond", "first"),
        ("bad \udcff byte", "bad \\udcff byte"),
        ("", ""),
    ],
)
def test_one_line_is_the_first_line_escaped(text: str, shown: str) -> None:
    assert one_line(text) == shown
