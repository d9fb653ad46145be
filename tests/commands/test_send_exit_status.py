"""``openai_capi_send`` run once exits with a code per cause, so that cron and monitors
can tell a quiet day from a stopped pipeline. With ``--loop`` it keeps running instead.

The codes (``health.ExitCode``): 0 all well, 3 a pixel is paused, 4 events failed in
this run (with ``--fail-on-error``), 5 events had been due longer than
``OPENAI_CAPI_STALE_AFTER``, 6 a pixel has no key; the most urgent wins.
"""

from __future__ import annotations

import signal
import threading
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
import responses
from django.core.management import CommandError, call_command
from django.utils import timezone

from django_openai_capi.delivery.loop import StopFlag
from django_openai_capi.health import ExitCode
from django_openai_capi.models import ConversionEvent, PixelPause
from tests.outbox import ENDPOINT, MakeEvents, error_envelope

pytestmark = pytest.mark.django_db


def exit_status(*args: str) -> tuple[int, str]:
    """The command's exit status, and its error message (stderr for CommandError)."""
    try:
        call_command("openai_capi_send", *args, stdout=StringIO(), stderr=StringIO())
    except CommandError as exc:
        return exc.returncode, str(exc)
    return 0, ""


def test_a_quiet_day_exits_0(api: responses.RequestsMock) -> None:
    assert exit_status() == (0, "")


def test_a_delivered_backlog_exits_0(
    api: responses.RequestsMock, make_events: MakeEvents
) -> None:
    api.post(ENDPOINT, json={})
    make_events(3)

    assert exit_status("--fail-on-error") == (0, "")


def test_a_refused_key_exits_3_on_this_run_and_on_every_run_after_it(
    api: responses.RequestsMock, make_events: MakeEvents
) -> None:
    api.post(ENDPOINT, status=401, json={"error": {"message": "Unauthorized"}})
    make_events(2)

    code, message = exit_status()
    # The next cron run claims nothing (the events wait for the pixel): still paused.
    again, _ = exit_status()

    assert (code, again) == (ExitCode.PAUSED, ExitCode.PAUSED) == (3, 3)
    assert "Delivery to pixel test-pixel is paused since" in message
    assert "HTTP 401: Unauthorized" in message
    assert message.startswith("paused (exit status 3): ")
    assert "test-key" not in message


def test_a_request_level_fault_exits_3(
    api: responses.RequestsMock, make_events: MakeEvents
) -> None:
    # A proxy that strips the query string: the API refuses every request, naming pid.
    envelope = {
        "error": {
            "message": "Missing required parameter: 'pid'.",
            "type": "invalid_request_error",
            "param": "pid",
            "code": "missing_required_parameter",
        }
    }
    api.post(ENDPOINT, status=400, json=envelope)
    make_events(2)

    code, message = exit_status()

    assert code == ExitCode.PAUSED
    assert "Missing required parameter: 'pid'" in message
    assert set(ConversionEvent.objects.values_list("status", flat=True)) == {"pending"}


def test_failed_events_exit_4_only_when_asked(
    api: responses.RequestsMock, make_events: MakeEvents
) -> None:
    api.add_callback(
        responses.POST, ENDPOINT, callback=lambda r: (400, {}, error_envelope(0))
    )
    make_events(1, prefix="a")
    assert exit_status() == (0, "")

    make_events(1, prefix="b")
    code, message = exit_status("--fail-on-error")

    assert code == ExitCode.FAILED
    assert int(code) == 4
    assert "1 events failed or expired in this run" in message


def test_events_due_too_long_exit_5_though_this_run_sent_them(
    api: responses.RequestsMock, make_events: MakeEvents, settings: Any
) -> None:
    settings.OPENAI_CAPI_STALE_AFTER = 600
    api.post(ENDPOINT, json={})
    make_events(2, next_attempt_at=timezone.now() - timedelta(minutes=20))

    code, message = exit_status()

    assert code == ExitCode.STALE
    assert int(code) == 5
    assert "have been due for 20 min" in message
    assert set(ConversionEvent.objects.values_list("status", flat=True)) == {"sent"}
    # Sent now: the next run is healthy again.
    assert exit_status() == (0, "")


def test_a_pixel_without_a_key_exits_6(
    api: responses.RequestsMock, make_events: MakeEvents, settings: Any
) -> None:
    settings.OPENAI_CAPI_API_KEY = None
    settings.OPENAI_CAPI_PIXEL_API_KEYS = {"other": "k"}
    make_events(1)

    code, message = exit_status()

    assert code == ExitCode.NO_KEY
    assert int(code) == 6
    assert "Pixel test-pixel has events waiting that cannot be sent" in message


def test_the_most_urgent_cause_wins(
    api: responses.RequestsMock, make_events: MakeEvents, settings: Any
) -> None:
    settings.OPENAI_CAPI_STALE_AFTER = 600
    api.add_callback(
        responses.POST, ENDPOINT, callback=lambda r: (400, {}, error_envelope(0))
    )
    make_events(1, next_attempt_at=timezone.now() - timedelta(hours=1))
    make_events(1, pixel_id="elsewhere", prefix="elsewhere")
    PixelPause.objects.create(
        pixel_id="elsewhere",
        paused_until=timezone.now() + timedelta(hours=1),
        needs_attention=True,
    )

    code, message = exit_status("--fail-on-error")

    assert code == ExitCode.PAUSED
    # Every cause is named, not only the one that sets the code.
    assert "paused" in message and "due for" in message and "failed" in message


@pytest.mark.django_db(transaction=True)  # the loop closes old connections
def test_a_loop_keeps_running_through_a_pause_and_logs_it_at_error(
    api: responses.RequestsMock,
    make_events: MakeEvents,
    caplog: pytest.LogCaptureFixture,
) -> None:
    api.post(ENDPOINT, status=401, json={"error": {"message": "Unauthorized"}})
    make_events(1)
    out = StringIO()
    original_enter = StopFlag.__enter__

    def stop_soon(flag: StopFlag) -> StopFlag:
        original_enter(flag)
        threading.Timer(0.5, setattr, (flag, "signal", signal.SIGTERM)).start()
        return flag

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(StopFlag, "__enter__", stop_soon)
        call_command(
            "openai_capi_send",
            "--loop",
            "--interval",
            "0.1",
            stdout=out,
            stderr=StringIO(),
        )

    assert "Stopped by SIGTERM" in out.getvalue()
    assert PixelPause.objects.filter(pixel_id="test-pixel").exists()
    told = [r for r in caplog.records if r.name == "django_openai_capi.alerts"]
    assert [r.levelname for r in told] == ["ERROR"]
    assert "paused" in told[0].getMessage()
