"""``openai_capi_status`` says per pixel whether conversions flow, and exits with the cause.

Each problem is made the way it happens: a key revoked at the API, OpenAI's
authentication outage, a worker that is not running, a key missing from the settings,
events that failed. Its exit status is the one the README documents, and the key never
appears in what the command prints.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
import responses
from django.core import mail
from django.core.management import CommandError, ManagementUtility, call_command
from django.db import connections
from django.utils import timezone

from django_openai_capi.delivery import send_pending
from django_openai_capi.health import ExitCode
from django_openai_capi.models import (
    ConversionEvent,
    ErrorKind,
    PixelAlert,
    PixelPause,
)
from django_openai_capi.testing import FakeConversionsAPI
from tests.outbox import ADMINS, MakeEvents, fake_at_endpoint, refuse_every_request

pytestmark = pytest.mark.django_db

ENDPOINT = "http://127.0.0.1:9/v1/events"
KEY = "sk-svcacct-TOPSECRET-status-0123456789"
Status = ConversionEvent.Status


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str
    #: The CommandError's message, which Django prints to stderr before exiting.
    error: str = ""

    @property
    def everything(self) -> str:
        return self.stdout + self.stderr + self.error


Status_ = Callable[..., Result]


@pytest.fixture
def status() -> Status_:
    """``status("--json")``: run the command; its exit status, output and error."""

    def run(*args: str) -> Result:
        stdout, stderr = StringIO(), StringIO()
        try:
            call_command("openai_capi_status", *args, stdout=stdout, stderr=stderr)
        except CommandError as error:
            return Result(
                error.returncode, stdout.getvalue(), stderr.getvalue(), str(error)
            )
        return Result(0, stdout.getvalue(), stderr.getvalue())

    return run


@pytest.fixture
def fake(settings: Any, api: responses.RequestsMock) -> Iterator[FakeConversionsAPI]:
    """The fake Conversions API, knowing KEY and test-pixel, behind ENDPOINT."""
    yield fake_at_endpoint(settings, api, KEY)


def test_a_healthy_pixel_exits_0_and_shows_its_last_accepted_request(
    status: Status_, fake: FakeConversionsAPI, make_events: MakeEvents
) -> None:
    make_events(3)
    assert send_pending().sent == 3
    request_id = fake.requests[-1].request_id

    result = status()

    assert result.code == ExitCode.OK
    assert "all 1 pixel healthy" in result.stdout
    row = _row(result.stdout, "test-pixel")
    assert row[:5] == ["test-pixel", "0", "-", "-", "0"]
    assert f"({request_id})" in row
    assert KEY not in result.everything


def test_a_revoked_key_is_a_pause_with_its_request_id_and_fix_exit_3(
    status: Status_, fake: FakeConversionsAPI, make_events: MakeEvents
) -> None:
    fake.revoke_key(KEY)
    make_events(2)
    send_pending()
    request_id = fake.requests[-1].request_id

    result = status()

    assert result.code == 3  # ExitCode.PAUSED, as the README documents
    problems, table = result.stdout.split("\nPixel ", 1)
    assert "1 of 1 pixel needs attention" in problems
    assert "test-pixel: PAUSED" in problems
    assert "Paused until: " in problems
    assert "Delivery to pixel test-pixel is paused since" in problems
    assert "(1 failed request in a row; HTTP 401: Unauthorized (request " in problems
    assert f"Why: {ErrorKind.AUTH.label}, HTTP 401" in problems
    assert f"Request ID (for OpenAI support): {request_id}" in problems
    assert "What to do: " in problems
    assert "Conversions API key" in problems.split("What to do: ")[1]
    assert _row(result.stdout, "test-pixel")[1] == "2"
    assert result.error == "paused (exit status 3): test-pixel paused"
    assert KEY not in result.everything


@pytest.mark.parametrize(
    ("fault", "http_status", "error"),
    [
        # The seed's outage: OpenAI's authentication backend, not the key.
        ("auth_backend_failure", 503, "Authentication backend failure"),
        # A request refused as a whole, none of its events named.
        ("request_refused", 400, "Invalid event."),
    ],
)
def test_a_request_level_fault_is_a_pause_exit_3(
    status: Status_,
    fake: FakeConversionsAPI,
    make_events: MakeEvents,
    fault: str,
    http_status: int,
    error: str,
) -> None:
    refuse_every_request(fake, fault)
    make_events(1)
    send_pending()

    result = status("--json")

    assert result.code == ExitCode.PAUSED
    (pixel,) = json.loads(result.stdout)["pixels"]
    assert pixel["problems"] == ["paused"]
    assert pixel["paused"]["http_status"] == http_status
    assert error in pixel["paused"]["error"]
    assert pixel["paused"]["request_id"]
    assert pixel["paused"]["advice"]


def test_a_pause_without_an_answer_says_so_and_when_its_wait_ended(
    status: Status_, fake: FakeConversionsAPI, make_events: MakeEvents
) -> None:
    fake.outage("drop")
    make_events(1)
    # One request without an answer is a blip: the pixel waits out a backoff, and
    # nothing is wrong yet. Three in a row need a person, as they do for the alerts.
    for attempt in range(3):
        send_pending()
        blip = status()
        assert blip.code == (ExitCode.OK if attempt < 2 else ExitCode.PAUSED), attempt
        PixelPause.objects.update(paused_until=timezone.now() - timedelta(minutes=5))
        ConversionEvent.objects.update(next_attempt_at=timezone.now())

    result = status()

    assert result.code == ExitCode.PAUSED
    assert f"Why: {ErrorKind.NETWORK.label}\n" in result.stdout
    assert "in a row; no answer" in result.stdout
    assert " (5 min ago)\n" in result.stdout


def test_a_worker_that_is_not_running_is_stale_exit_5_and_admins_are_told_once(
    status: Status_,
    make_events: MakeEvents,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.ADMINS = ADMINS
    settings.OPENAI_CAPI_STALE_AFTER = 600
    make_events(4, next_attempt_at=timezone.now() - timedelta(minutes=30))

    with django_capture_on_commit_callbacks(execute=True):
        first = status()
    with django_capture_on_commit_callbacks(execute=True):
        second = status()

    assert first.code == second.code == 5  # ExitCode.STALE
    assert "test-pixel: STALE" in first.stdout
    assert "have been due for 30 min, longer than OPENAI_CAPI_STALE_AFTER" in (
        first.stdout
    )
    assert "What to do: Check that a delivery worker is running" in first.stdout
    assert _row(first.stdout, "test-pixel")[1:4] == ["4", "30", "min"]
    assert first.error == "stale (exit status 5): test-pixel stale"
    assert [message.to for message in mail.outbox] == [["ops@example.com"]]
    assert "test-pixel" in mail.outbox[0].subject
    assert "Alerts: emailed to ADMINS (1 address)." in first.stdout


def test_the_stale_alert_clears_once_the_events_are_sent(
    status: Status_, make_events: MakeEvents
) -> None:
    make_events(1, next_attempt_at=timezone.now() - timedelta(hours=2))
    assert status().code == ExitCode.STALE
    ConversionEvent.objects.update(status=Status.SENT)

    assert status().code == ExitCode.OK

    alert = PixelAlert.objects.get(pixel_id="test-pixel")
    assert (alert.condition, alert.active) == ("stale", False)


def test_events_without_a_usable_key_exit_6_and_are_not_stale(
    status: Status_, make_events: MakeEvents, settings: Any
) -> None:
    settings.OPENAI_CAPI_API_KEY = None
    make_events(1, next_attempt_at=timezone.now() - timedelta(hours=2))

    result = status()

    assert result.code == 6  # ExitCode.NO_KEY
    # Its events wait for a key, not for a worker: not stale, and no worker advice.
    assert "test-pixel: NO KEY" in result.stdout
    assert "STALE" not in result.stdout
    assert result.error == "no_key (exit status 6): test-pixel no_key"


def test_a_malformed_key_is_described_never_shown(
    status: Status_, make_events: MakeEvents, settings: Any
) -> None:
    settings.OPENAI_CAPI_API_KEY = f'"{KEY}"'
    make_events(1)

    for args in [(), ("--json",)]:
        result = status(*args)
        assert result.code == ExitCode.NO_KEY
        assert "wrapped in quotes" in result.stdout
        assert "TOPSECRET" not in result.everything


@pytest.mark.parametrize(
    ("args", "code"), [((), ExitCode.OK), (("--fail-on-error",), ExitCode.FAILED)]
)
def test_failed_events_are_shown_and_exit_4_only_with_fail_on_error(
    status: Status_, make_events: MakeEvents, args: tuple[str, ...], code: ExitCode
) -> None:
    make_events(2, status=Status.FAILED, prefix="bad")
    make_events(1, status=Status.EXPIRED, prefix="old")

    result = status(*args)

    assert result.code == code
    assert "all 1 pixel healthy, with failed events" in result.stdout
    assert "test-pixel: FAILED EVENTS" in result.stdout
    assert "2 failed and 1 expired in the last 24 hours" in result.stdout
    assert _row(result.stdout, "test-pixel")[4:6] == ["2", "1"]
    if code:
        assert result.error == "failed (exit status 4): test-pixel failed"


def test_json_is_one_document_with_every_figure(
    status: Status_, fake: FakeConversionsAPI, make_events: MakeEvents
) -> None:
    make_events(1, pixel_id="other-pixel", prefix="o")
    make_events(2)
    fake.revoke_key(KEY)
    send_pending(pixel_ids=["test-pixel"])

    result = status("--json")

    document = json.loads(result.stdout)
    assert result.code == ExitCode.PAUSED
    assert set(document) == {"healthy", "checked_at", "stale_after_seconds", "pixels"}
    assert document["healthy"] is False
    by_pixel = {pixel["pixel_id"]: pixel for pixel in document["pixels"]}
    assert list(by_pixel) == ["other-pixel", "test-pixel"]
    assert set(by_pixel["test-pixel"]) == {
        "pixel_id",
        "healthy",
        "problems",
        "pending",
        "pending_capped",
        "oldest_due_at",
        "oldest_due_seconds",
        "paused",
        "no_key",
        "failed_24h",
        "expired_24h",
        "last_accepted_at",
        "last_accepted_request_id",
        "findings",
    }
    assert by_pixel["test-pixel"]["pending"] == 2
    assert by_pixel["test-pixel"]["paused"]["http_status"] == 401
    assert by_pixel["other-pixel"]["problems"] == []
    assert by_pixel["other-pixel"]["oldest_due_seconds"] >= 0
    assert result.stderr == ""
    assert KEY not in result.everything


def test_pixel_limits_the_report_and_its_exit_status(
    status: Status_, fake: FakeConversionsAPI, make_events: MakeEvents
) -> None:
    make_events(1, pixel_id="other-pixel", prefix="o")
    make_events(1)
    fake.revoke_key(KEY)
    send_pending(pixel_ids=["test-pixel"])

    result = status("--pixel", "other-pixel")

    assert result.code == ExitCode.OK
    assert "test-pixel" not in result.stdout
    assert _row(result.stdout, "other-pixel")[1] == "1"
    assert status("--pixel=other-pixel", "--pixel=test-pixel").code == ExitCode.PAUSED


def test_quiet_prints_nothing_when_healthy_and_only_the_problems_otherwise(
    status: Status_, make_events: MakeEvents
) -> None:
    assert status("--verbosity=0") == Result(0, "", "")
    make_events(1, status=Status.FAILED)
    make_events(1, prefix="late", next_attempt_at=timezone.now() - timedelta(hours=1))

    result = status("--verbosity=0")

    assert result.code == ExitCode.STALE
    assert result.stdout.startswith("test-pixel: STALE\n")
    assert "FAILED" not in result.stdout
    assert "Pixel " not in result.stdout


@pytest.mark.parametrize(
    ("admins", "mail_admins", "note"),
    [
        ([], True, "Alerts: ADMINS is empty, so alerts go to the log only"),
        ([("Ops", "ops@example.com")], False, "Alerts: emails are off"),
        ([("A", "a@example.com"), ("B", "b@example.com")], True, "(2 addresses)"),
    ],
)
def test_it_says_where_alerts_go(
    status: Status_, settings: Any, admins: list[Any], mail_admins: bool, note: str
) -> None:
    settings.ADMINS = admins
    settings.OPENAI_CAPI_MAIL_ADMINS = mail_admins

    assert note in status().stdout


def test_no_pixels_at_all_is_said_plainly(status: Status_, settings: Any) -> None:
    settings.OPENAI_CAPI_PIXEL_ID = None

    result = status()

    assert result.code == ExitCode.OK
    assert result.stdout.startswith("No pixels to report: none is configured")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--pixel", " "), "--pixel needs a Pixel ID."),
        (("--database", "nope"), "--database 'nope' is not in DATABASES."),
    ],
)
def test_bad_options_exit_1(
    status: Status_, args: tuple[str, ...], message: str
) -> None:
    assert status(*args) == Result(1, "", "", message)


def test_manage_py_exits_with_the_code(
    make_events: MakeEvents,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_events(1, next_attempt_at=timezone.now() - timedelta(hours=1))
    # run_from_argv closes every connection at the end: not the test's, mid-transaction.
    monkeypatch.setattr(connections, "close_all", lambda: None)

    with pytest.raises(SystemExit) as exited:
        ManagementUtility(["manage.py", "openai_capi_status", "--json"]).execute()

    assert exited.value.code == ExitCode.STALE
    captured = capsys.readouterr()
    assert json.loads(captured.out)["pixels"][0]["problems"] == ["stale"]
    assert captured.err == "CommandError: stale (exit status 5): test-pixel stale\n"


def _row(output: str, pixel_id: str) -> list[str]:
    """The table row of *pixel_id*, split into its words."""
    (line,) = [line for line in output.splitlines() if line.startswith(pixel_id + " ")]
    return line.split()
