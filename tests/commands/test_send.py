"""``openai_capi_send`` delivers what is due, once or in a loop, and stops cleanly.

With ``--validate-only`` it checks the due events against the API instead, changing
nothing; the library functions behind that are tested here too, as the admin will
call them.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from io import StringIO
from typing import Any

import pytest
import requests
import responses
from django.core.management import CommandError, call_command
from django.db import OperationalError
from django.utils import timezone

from django_openai_capi.api import build_event, encode_event
from django_openai_capi.delivery import DeliveryReport
from django_openai_capi.delivery.dry_run import (
    CLOSING_WINDOW,
    NOT_BUILT,
    OUT_OF_BUDGET,
    Check,
    EventVerdict,
)
from django_openai_capi.delivery.loop import StopFlag
from django_openai_capi.delivery.validation import (
    validate_due,
    validate_events,
    validate_pending,
)
from django_openai_capi.delivery.worker import due_count
from django_openai_capi.management.commands import openai_capi_send
from django_openai_capi.models import (
    ACCEPTANCE_WINDOW,
    ConversionEvent,
    DeliveryBatch,
    PixelPause,
)
from django_openai_capi.testing import FakeConversionsAPI
from tests.commands.conftest import Run
from tests.outbox import unbuild, with_payload
from tests.processes import ROOT, start_worker

pytestmark = pytest.mark.django_db

Status = ConversionEvent.Status
ENDPOINT = "http://127.0.0.1:9/v1/events"


def summary_line(sent: int, requests: int) -> str:
    noun = "request" if requests == 1 else "requests"
    return f"claimed {sent}, sent {sent}, retried 0, failed 0, expired 0 ({requests} {noun})"


def record(
    count: int,
    *,
    pixel_id: str = "test-pixel",
    prefix: str = "lead",
    event_time: datetime | None = None,
    **fields: Any,
) -> list[ConversionEvent]:
    """*count* built, due, pending events with ids ``{prefix}-0`` ..."""
    when = event_time or timezone.now() - timedelta(minutes=1)
    return ConversionEvent.objects.bulk_create(
        with_payload(
            ConversionEvent(
                pixel_id=pixel_id,
                event_type="lead_created",
                event_id=f"{prefix}-{i}",
                event_time=when,
                expires_at=when + ACCEPTANCE_WINDOW,
                **fields,
            ),
            encode_event(
                build_event(
                    "lead_created",
                    event_id=f"{prefix}-{i}",
                    event_time=min(when, timezone.now()),
                    user={"external_id": f"{prefix}-{i}"},
                )
            ),
        )
        for i in range(count)
    )


def statuses() -> dict[str, str]:
    return dict(ConversionEvent.objects.values_list("event_id", "status"))


def ids_in(request: Any) -> list[str]:
    return [event["id"] for event in json.loads(request.body)["events"]]


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


Reply = tuple[int, dict[str, str], str]


def reply(status: int = 200, body: object = None) -> Reply:
    return status, {"x-request-id": "req-1"}, json.dumps(body or {})


def refusing(*bad: str, name_the_event: bool = True) -> Callable[[Any], Reply]:
    """An API that refuses any request carrying one of the *bad* event ids."""

    def answer(request: Any) -> Reply:
        ids = ids_in(request)
        blamed = [index for index, event_id in enumerate(ids) if event_id in bad]
        if not blamed:
            return reply(200)
        error: dict[str, Any] = {
            "message": "Invalid event.",
            "type": "invalid_request_error",
        }
        if name_the_event:
            at = f"events[{blamed[0]}]"
            error.update(
                param=at,
                code="invalid_event",
                errors=[
                    {
                        "message": "must be a supported data type.",
                        "param": f"{at}.data.type",
                        "code": "missing_event_data_type",
                    }
                ],
            )
        return reply(400, {"error": error})

    return answer


def terminated_during_request() -> Callable[[Any], Reply]:
    """An API during whose requests the command receives SIGTERM."""

    def callback(request: Any) -> Reply:
        signal.raise_signal(signal.SIGTERM)
        return reply(200)

    return callback


class Terminal(StringIO):
    def isatty(self) -> bool:
        return True


def run_on_terminal(*args: str) -> str:
    out = Terminal()
    try:
        call_command("openai_capi_send", *args, stdout=out, stderr=StringIO())
    except CommandError as exc:
        # A paused pixel ends the run with status 3, after the bar and the summary.
        assert exc.returncode == 3, exc
    return out.getvalue()


# Options.


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch-size", "0"], "--batch-size must be at least 1, got 0."),
        (["--batch-size", "1001"], "--batch-size must be at most 1000"),
        (["--max-batches", "0"], "--max-batches must be at least 1, got 0."),
        (["--interval", "5"], "--interval only applies with --loop."),
        (["--loop", "--interval", "0"], "--interval must be more than 0 seconds"),
        (["--validate-only", "--loop"], "use one or the other"),
        (["--pixel", " "], "--pixel needs a Pixel ID."),
    ],
)
def test_bad_options_are_refused_naming_the_option(
    run_failing: Run, args: list[str], message: str
) -> None:
    record(1)

    output = run_failing("openai_capi_send", *args)

    assert message in output.error
    assert statuses() == {"lead-0": Status.PENDING}


@pytest.mark.parametrize("args", [[], ["--loop"], ["--validate-only"]])
def test_with_sending_disabled_it_says_so_and_sends_nothing(
    api: responses.RequestsMock, run: Run, settings: Any, args: list[str]
) -> None:
    settings.OPENAI_CAPI_SEND_ENABLED = False
    record(2)

    output = run("openai_capi_send", *args)

    assert "Sending is disabled (OPENAI_CAPI_SEND_ENABLED = False)" in output.stdout
    assert len(api.calls) == 0
    assert set(statuses().values()) == {Status.PENDING}


# One pass.


def test_one_pass_sends_everything_due_in_batches_and_sums_it_up(
    api: responses.RequestsMock, run: Run
) -> None:
    api.post(ENDPOINT, json={})
    record(5)

    output = run("openai_capi_send", "--batch-size", "2")

    assert output.stdout.strip() == summary_line(5, 3)
    assert [len(ids_in(call.request)) for call in api.calls] == [2, 2, 1]
    assert set(statuses().values()) == {Status.SENT}
    assert "\r" not in output.stdout  # not a terminal: no progress bar


def test_max_batches_leaves_the_rest_for_the_next_run(
    api: responses.RequestsMock, run: Run
) -> None:
    api.post(ENDPOINT, json={})
    record(5)

    output = run("openai_capi_send", "--batch-size", "2", "--max-batches", "1")

    assert output.stdout.strip() == summary_line(2, 1)
    assert list(statuses().values()).count(Status.PENDING) == 3


def test_pixel_options_choose_the_pixels(api: responses.RequestsMock, run: Run) -> None:
    api.post(ENDPOINT, json={})
    record(1, pixel_id="a", prefix="a")
    record(1, pixel_id="b", prefix="b")
    record(1, pixel_id="c", prefix="c")

    run("openai_capi_send", "--pixel", "a", "--pixel", "c")

    assert statuses() == {"a-0": Status.SENT, "b-0": Status.PENDING, "c-0": Status.SENT}


def test_nothing_due_is_a_quiet_success(api: responses.RequestsMock, run: Run) -> None:
    output = run("openai_capi_send")

    assert output.stdout.strip() == summary_line(0, 0)
    assert len(api.calls) == 0


def test_verbosity_zero_prints_nothing_when_all_is_well(
    api: responses.RequestsMock, run: Run
) -> None:
    api.post(ENDPOINT, json={})
    record(2)

    output = run("openai_capi_send", verbosity=0)

    assert output.stdout == ""
    assert set(statuses().values()) == {Status.SENT}


def test_a_pixel_without_a_key_is_reported_and_fails_the_run_after_the_others_are_sent(
    api: responses.RequestsMock, run_failing: Run, settings: Any
) -> None:
    settings.OPENAI_CAPI_API_KEY = None
    settings.OPENAI_CAPI_PIXEL_API_KEYS = {"test-pixel": "test-key"}
    api.post(ENDPOINT, json={})
    record(1)
    record(1, pixel_id="orphan", prefix="orphan")

    output = run_failing("openai_capi_send")

    assert statuses() == {"lead-0": Status.SENT, "orphan-0": Status.PENDING}
    assert "no key for: orphan" in output.stdout
    assert "No Conversions API key for pixel 'orphan'" in output.stderr
    assert "Pixel orphan has events waiting that cannot be sent" in output.error


def test_a_refused_key_is_explained_and_the_events_wait(
    api: responses.RequestsMock, run_failing: Run
) -> None:
    api.post(ENDPOINT, status=401, json={"error": {"message": "Unauthorized"}})
    record(2)

    output = run_failing("openai_capi_send")

    assert "claimed 2, sent 0, retried 2" in output.stdout
    assert "test-pixel: HTTP 401: Unauthorized" in output.stderr
    assert "Conversions API key" in output.stderr
    assert set(statuses().values()) == {Status.PENDING}
    assert "test-key" not in output.stdout + output.stderr


def test_a_refused_event_fails_alone_and_the_rest_is_sent(
    api: responses.RequestsMock, run: Run
) -> None:
    api.add_callback(responses.POST, ENDPOINT, callback=refusing("lead-1"))
    record(3)

    output = run("openai_capi_send")

    assert "claimed 3, sent 2, retried 0, failed 1, expired 0" in output.stdout
    assert statuses()["lead-1"] == Status.FAILED


def test_sigterm_during_a_batch_lets_it_finish_and_be_recorded_then_stops(
    api: responses.RequestsMock, run: Run
) -> None:
    api.add_callback(responses.POST, ENDPOINT, callback=terminated_during_request())
    record(5)

    output = run("openai_capi_send", "--batch-size", "2")

    assert len(api.calls) == 1
    assert list(statuses().values()).count(Status.SENT) == 2
    assert list(statuses().values()).count(Status.PENDING) == 3
    assert "Stopped by SIGTERM; no batch was left half-done." in output.stdout
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


@pytest.fixture
def ctrl_c_delivered() -> Iterator[None]:
    """SIGINT handled as an interactive Python handles it, for this test only.

    A suite started with SIGINT ignored (``make test &`` in a script, some CI runners)
    inherits SIG_IGN, and Python then leaves it so: the test must not depend on how
    the suite was started.
    """
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, inherited)


@pytest.mark.usefixtures("ctrl_c_delivered")
def test_a_second_ctrl_c_interrupts_the_batch_in_flight_and_says_what_becomes_of_it(
    api: responses.RequestsMock, run_failing: Run
) -> None:
    def callback(request: Any) -> Reply:
        # In the sending thread: the worker's main thread handles each signal while
        # it waits for this answer.
        for _ in range(2):
            signal.raise_signal(signal.SIGINT)
            threading.Event().wait(0.5)
        return reply(200)

    api.add_callback(responses.POST, ENDPOINT, callback=callback)
    record(2)

    output = run_failing("openai_capi_send")

    assert (
        "Interrupted: a batch in flight stays claimed until its lease" in output.error
    )
    assert set(statuses().values()) == {Status.SENDING}
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_the_ctrl_c_tests_pass_in_a_suite_started_with_sigint_ignored() -> None:
    # On SQLite: a second test database of the same name would clash on PostgreSQL.
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    suite = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:randomly",
            f"{__file__}::test_a_second_ctrl_c_interrupts_the_batch_in_flight_and_says_what_becomes_of_it",
            f"{ROOT}/tests/delivery/test_loop.py::test_a_second_ctrl_c_stops_at_once_and_the_handlers_are_put_back",
        ],
        cwd=ROOT,
        env=env,
        # As a shell starts a background job: with SIGINT ignored, inherited by Python.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert suite.returncode == 0, suite.stdout + suite.stderr
    assert "2 passed" in suite.stdout


def test_on_a_terminal_a_progress_bar_is_drawn_in_place_and_cleared(
    api: responses.RequestsMock,
) -> None:
    api.post(ENDPOINT, json={})
    record(4)
    record(2, pixel_id="paused", prefix="paused")
    PixelPause.objects.create(
        pixel_id="paused", paused_until=timezone.now() + timedelta(hours=1)
    )

    shown = run_on_terminal("--batch-size", "2")

    # The pixel on hold is not counted: the bar can reach its end.
    assert "\r[############............] 1 batches, claimed 2 of 4, sent 2" in shown
    *drawn, summary = shown.split("\n")[0].split("\r")
    assert summary.startswith(summary_line(4, 2) + "; paused: paused until ")
    assert drawn[-1].strip() == ""  # the bar was wiped before the summary


def test_a_quiet_run_draws_no_bar_even_on_a_terminal(
    api: responses.RequestsMock,
) -> None:
    api.post(ENDPOINT, json={})
    record(2)

    assert run_on_terminal("--verbosity", "0") == ""


def test_the_bar_counts_only_what_the_options_let_the_pass_take(
    api: responses.RequestsMock,
) -> None:
    api.post(ENDPOINT, json={})
    record(3, pixel_id="a", prefix="a")
    record(5, pixel_id="b", prefix="b")

    shown = run_on_terminal("--pixel", "a", "--batch-size", "1", "--max-batches", "2")

    assert "claimed 1 of 2, sent 1" in shown
    assert "claimed 2 of 2, sent 2" in shown


# The loop.


@pytest.fixture
def sigterm_when_idle(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Instead of waiting when idle, the loop receives SIGTERM; the waits asked for."""
    waits: list[float] = []

    def sleep(self: StopFlag, seconds: float) -> None:
        waits.append(seconds)
        signal.raise_signal(signal.SIGTERM)

    monkeypatch.setattr(StopFlag, "sleep", sleep)
    return waits


@pytest.mark.django_db(transaction=True)
def test_the_loop_sends_until_idle_waits_and_stops_on_sigterm_with_a_total(
    api: responses.RequestsMock, run: Run, sigterm_when_idle: list[float]
) -> None:
    api.post(ENDPOINT, json={})
    record(3)

    output = run("openai_capi_send", "--loop", "--interval", "7", "--batch-size", "2")

    lines = output.stdout.splitlines()
    assert lines[0].startswith("Sending due events; looking again every 7 s")
    assert lines[1].endswith(" " + summary_line(3, 2))  # after a timestamp
    assert lines[2:] == [
        "Stopped by SIGTERM; no batch was left half-done.",
        "Total: " + summary_line(3, 2),
    ]
    assert sigterm_when_idle == [7.0]  # only the idle pass waited
    assert set(statuses().values()) == {Status.SENT}


@pytest.mark.django_db(transaction=True)
def test_the_loop_stops_after_the_batch_in_flight(
    api: responses.RequestsMock, run: Run
) -> None:
    api.add_callback(responses.POST, ENDPOINT, callback=terminated_during_request())
    record(5)

    output = run("openai_capi_send", "--loop", "--batch-size", "2")

    assert len(api.calls) == 1
    assert list(statuses().values()).count(Status.SENT) == 2
    assert "Total: " + summary_line(2, 1) in output.stdout


@pytest.mark.django_db(transaction=True)
def test_the_loop_reports_a_pixel_without_key_once_not_every_pass(
    api: responses.RequestsMock,
    run: Run,
    settings: Any,
    sigterm_when_idle: list[float],
) -> None:
    settings.OPENAI_CAPI_API_KEY = None
    settings.OPENAI_CAPI_PIXEL_API_KEYS = {"test-pixel": "test-key"}
    api.post(ENDPOINT, json={})
    record(1)
    record(1, pixel_id="orphan", prefix="orphan")

    output = run("openai_capi_send", "--loop")

    assert output.stderr.count("No Conversions API key for pixel 'orphan'") == 1
    assert "Total: claimed 1, sent 1" in output.stdout
    assert statuses() == {"lead-0": Status.SENT, "orphan-0": Status.PENDING}


@pytest.mark.django_db(transaction=True)
def test_the_loop_outlives_a_database_error(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    passes: list[str] = []

    def send_pending(**options: Any) -> DeliveryReport:
        passes.append("pass")
        if len(passes) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        signal.raise_signal(signal.SIGTERM)
        return DeliveryReport()

    monkeypatch.setattr(openai_capi_send, "send_pending", send_pending)

    output = run("openai_capi_send", "--loop", "--interval", "0.01")

    assert len(passes) == 2
    assert "Database error, trying again in 0.01 s: server closed" in output.stderr
    assert "Total: " + summary_line(0, 0) in output.stdout


@pytest.mark.django_db(transaction=True)
def test_the_loop_draws_its_bar_on_a_terminal(
    api: responses.RequestsMock, sigterm_when_idle: list[float]
) -> None:
    api.post(ENDPOINT, json={})
    record(2)

    shown = run_on_terminal("--loop", "--batch-size", "1")

    assert "\r[########################] 2 batches, claimed 2 of 2, sent 2" in shown


def read_line(stream: Any, timeout: float = 30.0) -> str:
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, "no output from the worker"
    line: str = stream.readline()
    return line


@pytest.mark.django_db(transaction=True)
def test_sigterm_to_a_real_worker_mid_batch_finishes_the_batch_then_exits_0() -> None:
    record(5)
    request_arrived = threading.Event()
    with FakeConversionsAPI(
        api_key="test-key", on_request=lambda request: request_arrived.set()
    ) as fake:
        # The first answer comes a second late: SIGTERM lands while it is awaited.
        fake.fail_next("delay", seconds=1.0)
        worker = start_worker(
            "--loop", "--interval", "60", "--batch-size", "2", endpoint=fake.url
        )
        try:
            assert request_arrived.wait(30), "the worker sent nothing"
            worker.send_signal(signal.SIGTERM)
            output, errors = worker.communicate(timeout=15)
        finally:
            worker.kill()
            worker.wait()

    assert worker.returncode == 0, errors
    assert len(fake.requests) == 1
    assert sorted(fake.accepted_ids()) == ["lead-0", "lead-1"]
    assert statuses() == {
        "lead-0": Status.SENT,
        "lead-1": Status.SENT,
        "lead-2": Status.PENDING,
        "lead-3": Status.PENDING,
        "lead-4": Status.PENDING,
    }
    assert "Stopped by SIGTERM; no batch was left half-done." in output
    assert "Total: " + summary_line(2, 1) in output


@pytest.mark.django_db(transaction=True)
def test_sigterm_to_an_idle_worker_ends_its_wait_at_once() -> None:
    worker = start_worker("--loop", "--interval", "60", endpoint=ENDPOINT)
    try:
        assert read_line(worker.stdout).startswith("Sending due events")
        time.sleep(0.5)  # into the 60-second wait
        started = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        output, errors = worker.communicate(timeout=15)
    finally:
        worker.kill()
        worker.wait()

    assert worker.returncode == 0, errors
    assert time.monotonic() - started < 5
    assert "Total: " + summary_line(0, 0) in output


def test_a_worker_run_from_a_shell_exits_1_on_a_bad_option() -> None:
    worker = start_worker("--batch-size", "5000", endpoint=ENDPOINT)
    output, errors = worker.communicate(timeout=60)

    assert worker.returncode == 1
    assert "--batch-size must be at most 1000" in errors
    assert output == ""


# --validate-only: the command.


def test_validate_only_lists_refused_events_and_changes_nothing(
    api: responses.RequestsMock, run: Run
) -> None:
    api.add_callback(responses.POST, ENDPOINT, callback=refusing("lead-1"))
    events = record(3)
    before = list(ConversionEvent.objects.values().order_by("pk"))

    output = run("openai_capi_send", "--validate-only")

    assert output.stdout.splitlines() == [
        f"Refused: #{events[1].pk} lead_created lead-1: events[1].data.type: must be "
        + "a supported data type. [missing_event_data_type]",
        "Checked with validate_only: 2 ok, 1 refused, 0 not checked. No event was "
        + "changed, and OpenAI recorded nothing.",
    ]
    assert all(
        json.loads(call.request.body or "")["validate_only"] for call in api.calls
    )
    assert list(ConversionEvent.objects.values().order_by("pk")) == before
    assert not DeliveryBatch.objects.exists()
    assert not PixelPause.objects.exists()


def test_validate_only_says_why_events_were_not_checked(
    api: responses.RequestsMock, run: Run
) -> None:
    api.post(
        ENDPOINT,
        status=503,
        json={"error": {"message": "503: Authentication backend failure"}},
        headers={"x-request-id": "req-503"},
    )
    record(3)
    record(1, prefix="old")
    # At the end of its window: delivery would expire it rather than send it.
    ConversionEvent.objects.filter(event_id="old-0").update(expires_at=timezone.now())

    output = run("openai_capi_send", "--validate-only", "--batch-size", "2")

    assert len(api.calls) == 1  # after an outage, no more requests
    assert (
        "3 not checked: HTTP 503: Authentication backend failure "
        + "(request req-503). This is usually temporary: check again later."
    ) in output.stderr
    assert f"1 not checked: {CLOSING_WINDOW}" in output.stderr
    assert "0 ok, 0 refused, 4 not checked." in output.stdout


def test_validate_only_mentions_pending_events_not_built_yet(
    api: responses.RequestsMock, run: Run
) -> None:
    api.post(ENDPOINT, json={})
    record(1)
    [unbuilt] = record(1, prefix="unbuilt")
    [elsewhere] = record(1, pixel_id="other", prefix="elsewhere")
    unbuild(unbuilt, elsewhere)

    everything = run("openai_capi_send", "--validate-only")
    chosen = run("openai_capi_send", "--validate-only", "--pixel", "test-pixel")

    assert "2 pending events are not built yet, so not checked" in everything.stderr
    assert "1 pending events are not built yet, so not checked" in chosen.stderr
    assert "1 ok, 0 refused, 0 not checked" in chosen.stdout


def test_validate_only_marks_events_refused_for_their_age(
    api: responses.RequestsMock, run: Run
) -> None:
    api.post(
        ENDPOINT,
        status=422,
        json={
            "error": {
                "message": "event_timestamp_ms must be within the last 7 days.",
                "param": "events[0].timestamp_ms",
                "code": "event_timestamp_too_old",
            }
        },
    )
    record(1)

    output = run("openai_capi_send", "--validate-only")

    assert "lead-0 (too old: delivery will expire it): " in output.stdout


def test_validate_only_checks_at_most_max_batches_batches_with_a_bar_on_a_terminal(
    api: responses.RequestsMock,
) -> None:
    api.post(ENDPOINT, json={})
    record(7)

    shown = run_on_terminal(
        "--validate-only", "--batch-size", "2", "--max-batches", "2"
    )

    assert len(api.calls) == 2
    assert "checked 4 of 4, refused 0" in shown
    assert "Checked with validate_only: 4 ok, 0 refused, 0 not checked." in shown


def test_validate_only_counts_the_backlog_of_the_chosen_pixels_for_its_bar(
    api: responses.RequestsMock,
) -> None:
    api.post(ENDPOINT, json={})
    record(3)
    record(2, pixel_id="other", prefix="other")

    everything = run_on_terminal("--validate-only")
    chosen = run_on_terminal("--validate-only", "--pixel", "other")

    assert "checked 5 of 5" in everything
    assert "checked 2 of 2" in chosen


def test_validate_only_stops_on_sigterm_after_the_request_in_flight(
    api: responses.RequestsMock, run: Run
) -> None:
    api.add_callback(responses.POST, ENDPOINT, callback=terminated_during_request())
    record(3)

    output = run("openai_capi_send", "--validate-only", "--batch-size", "1")

    assert len(api.calls) == 1
    assert "Stopped by SIGTERM." in output.stdout
    assert "1 ok, 0 refused, 0 not checked" in output.stdout


def test_validate_only_against_the_fake_api_over_real_http(
    run: Run, settings: Any
) -> None:
    events = record(4)
    with FakeConversionsAPI(api_key="test-key") as fake:
        settings.OPENAI_CAPI_ENDPOINT = fake.url
        fake.reject_events({"lead-2"}, message="Bad lead.")
        output = run("openai_capi_send", "--validate-only")

    assert f"Refused: #{events[2].pk} lead_created lead-2: " in output.stdout
    assert "Bad lead." in output.stdout
    assert "3 ok, 1 refused, 0 not checked" in output.stdout
    assert all(request.validate_only for request in fake.requests)
    assert fake.accepted == {}
    assert set(statuses().values()) == {Status.PENDING}


def test_sending_against_the_fake_api_over_real_http(run: Run, settings: Any) -> None:
    record(5)
    with FakeConversionsAPI(api_key="test-key") as fake:
        settings.OPENAI_CAPI_ENDPOINT = fake.url
        output = run("openai_capi_send", "--batch-size", "2")

    assert output.stdout.strip() == summary_line(5, 3)
    assert sorted(fake.accepted_ids()) == sorted(statuses())
    assert set(statuses().values()) == {Status.SENT}


# --validate-only: the library, as the admin calls it.


def test_validate_events_groups_per_pixel_and_answers_in_the_order_given(
    api: responses.RequestsMock,
) -> None:
    api.post(ENDPOINT, json={}, headers={"x-request-id": "req-ok"})
    a = record(3, pixel_id="a", prefix="a")
    b = record(2, pixel_id="b", prefix="b")
    given = [b[0], a[0], a[1], b[1], a[2], a[0]]

    verdicts = validate_events(given, batch_size=2)

    assert [v.event_id for v in verdicts] == ["b-0", "b-1", "a-0", "a-1", "a-2"]
    assert all(v.ok and v.http_status == 200 for v in verdicts)
    assert verdicts[0].request_id == "req-ok"
    assert [
        ((call.request.url or "").rsplit("=", 1)[1], ids_in(call.request))
        for call in api.calls
    ] == [("b", ["b-0", "b-1"]), ("a", ["a-0", "a-1"]), ("a", ["a-2"])]


def test_validate_events_bisects_when_the_api_names_no_event(
    api: responses.RequestsMock,
) -> None:
    api.add_callback(
        responses.POST, ENDPOINT, callback=refusing("e-5", name_the_event=False)
    )
    events = record(8, prefix="e")

    verdicts = validate_events(events)

    refused = [v for v in verdicts if v.check is Check.REFUSED]
    assert [v.event_id for v in refused] == ["e-5"]
    assert refused[0].message == "Invalid event."
    assert refused[0].http_status == 400
    assert sum(v.ok for v in verdicts) == 7
    # The batch, its first event alone (did the API judge the events, or refuse the
    # request?), then two requests a level of bisection.
    assert len(api.calls) <= 2 + 2 * 3


def test_validate_events_redacts_a_key_the_api_echoes(
    api: responses.RequestsMock,
) -> None:
    api.post(
        ENDPOINT,
        status=400,
        json={
            "error": {"message": "Bad event sent with test-key", "param": "events[0]"}
        },
    )

    [verdict] = validate_events(record(1))

    assert verdict.check is Check.REFUSED
    assert verdict.message == "events[0]: Bad event sent with [redacted]"


def test_events_that_cannot_be_sent_are_not_posted(
    api: responses.RequestsMock,
) -> None:
    [unbuilt] = record(1, prefix="unbuilt")
    unbuilt.payload = None
    closing = record(
        1,
        prefix="closing",
        event_time=timezone.now() - ACCEPTANCE_WINDOW + timedelta(minutes=2),
    )

    verdicts = validate_events([unbuilt, *closing])

    assert [(v.check, v.message) for v in verdicts] == [
        (Check.NOT_CHECKED, NOT_BUILT),
        (Check.NOT_CHECKED, CLOSING_WINDOW),
    ]
    assert len(api.calls) == 0


def test_a_refused_key_stops_the_checks_of_its_pixel_with_advice(
    api: responses.RequestsMock,
) -> None:
    api.post(
        ENDPOINT,
        status=401,
        json={"error": {"message": "Unauthorized"}},
        headers={"x-request-id": "req-401"},
    )

    verdicts = validate_events(record(5), batch_size=2)

    assert len(api.calls) == 1
    assert {v.check for v in verdicts} == {Check.NOT_CHECKED}
    assert {v.request_id for v in verdicts} == {"req-401"}
    assert {v.http_status for v in verdicts} == {401}
    assert verdicts[4].message.startswith(
        "Not checked: HTTP 401: Unauthorized (request req-401). Check "
        + "OPENAI_CAPI_API_KEY: it must be a Conversions API key"
    )


def test_no_answer_is_reported_without_a_request_id(
    api: responses.RequestsMock,
) -> None:
    api.post(ENDPOINT, body=requests.ConnectionError("refused"))

    [verdict] = validate_events(record(1))

    assert verdict.check is Check.NOT_CHECKED
    assert verdict.message.startswith("Not checked: No response: ")
    assert verdict.http_status is None


def test_a_group_that_runs_out_of_requests_does_not_stop_the_next_one(
    api: responses.RequestsMock,
) -> None:
    # e-0 passes alone: the API judges the events, and fifteen bad ones need more
    # requests than a group may make. (Sixteen refused would be the request's fault.)
    bad = [f"e-{i}" for i in range(1, 16)]
    api.add_callback(
        responses.POST, ENDPOINT, callback=refusing(*bad, name_the_event=False)
    )
    events = record(17, prefix="e")

    verdicts = validate_events(events, batch_size=16)

    checks = [v.check for v in verdicts]
    assert Check.REFUSED in checks
    assert [v.message for v in verdicts if v.check is Check.NOT_CHECKED][0] == (
        OUT_OF_BUDGET
    )
    assert verdicts[-1].ok  # the second group, sent with a fresh budget


def test_a_pixel_without_a_key_is_not_checked_and_nothing_is_sent(
    api: responses.RequestsMock, settings: Any
) -> None:
    settings.OPENAI_CAPI_API_KEY = None

    [verdict] = validate_events(record(1))

    assert verdict.check is Check.NOT_CHECKED
    assert verdict.message.startswith(
        "Not checked: No Conversions API key for pixel 'test-pixel'"
    )
    assert len(api.calls) == 0


def test_validate_pending_reads_only_due_built_pending_events_without_claiming(
    api: responses.RequestsMock,
) -> None:
    api.post(ENDPOINT, json={})
    record(2, prefix="due")
    record(1, prefix="later", next_attempt_at=timezone.now() + timedelta(hours=1))
    record(1, prefix="sent", status=Status.SENT)
    record(1, prefix="sending", status=Status.SENDING)
    [unbuilt] = record(1, prefix="unbuilt")
    unbuild(unbuilt)
    before = list(ConversionEvent.objects.values().order_by("pk"))

    verdicts = validate_pending()

    assert [v.event_id for v in verdicts] == ["due-0", "due-1"]
    assert list(ConversionEvent.objects.values().order_by("pk")) == before


def test_validate_pending_pages_through_pixels_up_to_a_limit(
    api: responses.RequestsMock,
) -> None:
    api.post(ENDPOINT, json={})
    record(3, pixel_id="a", prefix="a")
    record(3, pixel_id="b", prefix="b")
    record(3, pixel_id="c", prefix="c")

    limited = validate_pending(limit=5, batch_size=2)
    chosen = validate_pending(pixel_ids=["c"], batch_size=3)

    assert [v.event_id for v in limited] == ["a-0", "a-1", "a-2", "b-0", "b-1"]
    assert [v.event_id for v in chosen] == ["c-0", "c-1", "c-2"]
    assert [len(ids_in(call.request)) for call in api.calls] == [2, 1, 2, 3]


def test_validate_due_sums_up_what_it_checked_and_stops_when_asked(
    api: responses.RequestsMock,
) -> None:
    api.add_callback(responses.POST, ENDPOINT, callback=refusing("a-1"))
    record(4, pixel_id="a", prefix="a")
    record(2, pixel_id="b", prefix="b")
    [unbuilt] = record(1, pixel_id="a", prefix="unbuilt")
    unbuild(unbuilt)
    heard: list[tuple[str, int]] = []

    report = validate_due(
        pixel_ids=["a"],
        batch_size=2,
        should_stop=lambda: len(heard) == 3,
        on_verdict=lambda verdict, so_far: heard.append(
            (verdict.event_id, so_far.checked)
        ),
    )

    # Stopped after the third verdict: the first of the second request.
    assert sorted(event_id for event_id, _ in heard) == ["a-0", "a-1", "a-2"]
    assert [checked for _, checked in heard] == [1, 2, 3]
    assert (report.counts[Check.OK], report.counts[Check.REFUSED]) == (2, 1)
    assert report.unbuilt == 1
    assert report.problems() == [
        "1 pending events are not built yet, so not checked: delivery builds them "
        + "first (run openai_capi_send)."
    ]


def test_due_count_leaves_paused_pixels_out_unless_asked_and_stops_at_the_limit() -> (
    None
):
    record(5, pixel_id="a", prefix="a")
    record(3, pixel_id="paused", prefix="paused")
    PixelPause.objects.create(
        pixel_id="paused", paused_until=timezone.now() + timedelta(hours=1)
    )

    assert due_count() == 5
    assert due_count(paused=True) == 8
    assert due_count(paused=True, pixel_ids=["paused"]) == 3
    assert due_count(batch_size=2, max_batches=2) == 4


@pytest.mark.parametrize("size", [0, 1001])
def test_a_batch_size_the_api_cannot_take_is_an_error(size: int) -> None:
    with pytest.raises(ValueError, match="batch_size must be 1 to 1000"):
        validate_pending(batch_size=size)


def test_a_verdict_is_ok_only_when_the_api_accepted_the_event() -> None:
    def verdict(check: Check) -> EventVerdict:
        return EventVerdict(1, "p", "lead_created", "x", check)

    assert verdict(Check.OK).ok
    assert not verdict(Check.REFUSED).ok
    assert not verdict(Check.NOT_CHECKED).ok
