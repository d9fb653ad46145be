"""One assessment of delivery's health per pixel, read by every tool that tells."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from django_openai_capi import health
from django_openai_capi.health import ExitCode, Problem
from django_openai_capi.models import ConversionEvent, DeliveryBatch, PixelPause
from tests.outbox import MakeEvents

pytestmark = pytest.mark.django_db


def pixel(report: health.Health, pixel_id: str) -> health.PixelHealth:
    (found,) = [p for p in report.pixels if p.pixel_id == pixel_id]
    return found


def test_a_fresh_install_is_healthy_and_knows_its_configured_pixel() -> None:
    report = health.assess()

    assert report.healthy
    assert report.exit_code() == ExitCode.OK
    only = pixel(report, "test-pixel")
    assert (only.pending, only.oldest_due, only.pause, only.findings) == (
        0,
        None,
        None,
        (),
    )


def test_each_figure_of_a_pixel(make_events: MakeEvents) -> None:
    now = timezone.now()
    make_events(2, next_attempt_at=now - timedelta(minutes=3))
    make_events(1, prefix="later", next_attempt_at=now + timedelta(hours=1))
    make_events(2, prefix="dead", status="failed", updated_at=now)
    make_events(1, prefix="old", status="expired")
    make_events(1, prefix="long-dead", status="failed")
    ConversionEvent.objects.filter(event_id="long-dead-0").update(
        updated_at=now - timedelta(days=2)
    )
    DeliveryBatch.objects.create(
        claim_id=uuid.uuid4(),
        pixel_id="test-pixel",
        size=5,
        outcome="accepted",
        request_id="req-last",
        created_at=now - timedelta(minutes=1),
        finished_at=now - timedelta(minutes=1),
    )

    found = pixel(health.assess(now=now), "test-pixel")

    assert found.pending == 3
    assert found.oldest_due is not None
    assert now - found.oldest_due == timedelta(minutes=3)
    assert (found.failed_24h, found.expired_24h) == (2, 1)
    assert found.last_accepted_request_id == "req-last"
    assert found.problems == (Problem.FAILED,)
    assert found.healthy  # failed events are their own conversions' fault


def test_counts_stop_at_the_cap(
    make_events: MakeEvents, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health, "COUNT_CAP", 3)
    make_events(5)

    found = pixel(health.assess(), "test-pixel")

    assert (found.pending, found.pending_capped) == (3, True)


def test_a_paused_pixel_says_since_when_why_and_what_to_do(
    make_events: MakeEvents,
) -> None:
    since = timezone.now() - timedelta(hours=2)
    make_events(1, pixel_id="px-2", next_attempt_at=timezone.now() + timedelta(hours=1))
    PixelPause.objects.create(
        pixel_id="px-2",
        needs_attention=True,
        since=since,
        paused_until=timezone.now() - timedelta(minutes=1),  # its wait ran out
        failures=4,
        reason="auth",
        http_status=401,
        error="HTTP 401: Unauthorized",
        advice="Create a new Conversions API key.",
        request_id="req-9",
    )

    report = health.assess()
    found = pixel(report, "px-2")

    assert found.pause is not None and found.pause.since == since
    (finding,) = found.findings
    assert finding.problem is Problem.PAUSED
    assert "paused since" in finding.summary and "HTTP 401" in finding.summary
    assert finding.advice == "Create a new Conversions API key."
    assert finding.request_id == "req-9"
    assert report.exit_code() == ExitCode.PAUSED


def test_a_pause_whose_reason_this_version_does_not_know_is_shown_as_stored() -> None:
    # Written by a newer version and kept across a downgrade.
    PixelPause.objects.create(
        pixel_id="px-3",
        paused_until=timezone.now() + timedelta(minutes=5),
        reason="quota",
    )
    PixelPause.objects.create(
        pixel_id="px-4", paused_until=timezone.now() + timedelta(minutes=5)
    )

    report = health.assess()

    found = pixel(report, "px-3").pause
    assert found is not None and (found.reason, found.reason_label) == (
        "quota",
        "quota",
    )
    unknown = pixel(report, "px-4").pause
    assert unknown is not None and unknown.reason_label == ""


def test_events_due_longer_than_the_threshold_mean_no_worker_is_sending(
    make_events: MakeEvents, settings: Any
) -> None:
    settings.OPENAI_CAPI_STALE_AFTER = 300
    make_events(1, next_attempt_at=timezone.now() - timedelta(minutes=4))
    assert health.assess().healthy

    make_events(1, prefix="older", next_attempt_at=timezone.now() - timedelta(hours=3))
    report = health.assess()

    (finding,) = report.findings
    assert finding.problem is Problem.STALE
    assert "due for 3 h 0 min" in finding.summary
    assert "worker" in finding.advice
    assert report.exit_code() == ExitCode.STALE
    assert set(health.stale()) == {"test-pixel"}


def test_waiting_events_of_a_paused_pixel_are_not_stale(
    make_events: MakeEvents, settings: Any
) -> None:
    settings.OPENAI_CAPI_STALE_AFTER = 60
    # Held back until the pause ends: not due, so no worker is to blame.
    make_events(1, next_attempt_at=timezone.now() + timedelta(minutes=30))

    assert health.stale() == {}


def test_due_events_of_a_paused_pixel_wait_for_the_pause_not_for_a_worker(
    make_events: MakeEvents, settings: Any
) -> None:
    settings.OPENAI_CAPI_STALE_AFTER = 600
    now = timezone.now()
    # Due an hour ago by their own backoff, but the pixel's pause (a long outage)
    # ended only 5 minutes ago.
    make_events(1, next_attempt_at=now - timedelta(hours=1))
    PixelPause.objects.create(
        pixel_id="test-pixel",
        paused_until=now - timedelta(minutes=5),
        failures=9,
        needs_attention=True,
    )
    assert health.stale(now=now) == {}
    assert health.assess(now=now).findings[0].problem is Problem.PAUSED

    # The pause ended 20 minutes ago and nothing sent them: that is a stopped worker.
    PixelPause.objects.update(paused_until=now - timedelta(minutes=20))
    assert set(health.stale(now=now)) == {"test-pixel"}
    assert "due for 20 min" in health.stale(now=now)["test-pixel"].summary


def test_a_passing_blip_or_a_pixel_with_nothing_to_send_is_not_a_problem(
    make_events: MakeEvents,
) -> None:
    # One 503: the pixel waits out a backoff; nothing needs a person yet.
    make_events(1)
    PixelPause.objects.create(
        pixel_id="test-pixel", paused_until=timezone.now() + timedelta(seconds=30)
    )
    # A pixel no longer used, paused for good, with nothing to hold back.
    PixelPause.objects.create(
        pixel_id="retired",
        paused_until=timezone.now() + timedelta(hours=6),
        needs_attention=True,
    )

    report = health.assess()

    assert report.healthy and report.findings == ()
    assert pixel(report, "retired").pause is not None  # shown, not a problem


def test_a_pixel_with_events_and_no_key(make_events: MakeEvents, settings: Any) -> None:
    settings.OPENAI_CAPI_PIXEL_API_KEYS = {}
    settings.OPENAI_CAPI_API_KEY = None
    make_events(1, pixel_id="orphan")

    ConversionEvent.objects.update(next_attempt_at=timezone.now() - timedelta(days=1))
    found = pixel(health.assess(), "orphan")

    # Not stale: its events wait for a key, not for a worker.
    assert found.problems == (Problem.NO_KEY,)
    assert health.stale() == {}
    assert found.no_key is not None and "OPENAI_CAPI_API_KEY" in found.no_key


@pytest.mark.parametrize(
    ("problems", "fail_on_error", "code"),
    [
        ([], False, ExitCode.OK),
        ([Problem.FAILED], False, ExitCode.OK),
        ([Problem.FAILED], True, ExitCode.FAILED),
        ([Problem.FAILED, Problem.STALE], True, ExitCode.STALE),
        ([Problem.STALE, Problem.PAUSED], False, ExitCode.PAUSED),
        ([Problem.PAUSED, Problem.NO_KEY], False, ExitCode.NO_KEY),
    ],
)
def test_the_exit_code_is_the_most_urgent_problems(
    problems: list[Problem], fail_on_error: bool, code: ExitCode
) -> None:
    assert health.exit_code(problems, fail_on_error=fail_on_error) == code


def test_the_json_is_plain_and_carries_no_key(
    make_events: MakeEvents, settings: Any
) -> None:
    settings.OPENAI_CAPI_API_KEY = "sk-very-SECRET-key"
    make_events(1, next_attempt_at=timezone.now() - timedelta(days=1))
    PixelPause.objects.create(
        pixel_id="test-pixel",
        # Its wait ended half an hour ago, and no worker has tried since.
        paused_until=timezone.now() - timedelta(minutes=30),
        needs_attention=True,
        reason="server",
        http_status=503,
        request_id="req-1",
    )

    document = json.loads(json.dumps(health.assess().as_json()))

    assert document["healthy"] is False
    (entry,) = document["pixels"]
    assert entry["problems"] == ["paused", "stale"]
    assert entry["paused"]["request_id"] == "req-1"
    assert entry["oldest_due_seconds"] >= 86400
    assert "SECRET" not in json.dumps(document)


def test_a_stopped_worker_shows_on_model_conversions_it_never_built(
    make_events: MakeEvents, settings: Any
) -> None:
    # Recorded by a save, unbuilt: the worker builds them, and none is running.
    settings.OPENAI_CAPI_STALE_AFTER = 600
    make_events(3, payload=None, next_attempt_at=timezone.now() - timedelta(hours=3))

    report = health.assess()

    assert [f.problem for f in report.findings] == [Problem.STALE]
    assert set(health.stale()) == {"test-pixel"}


@pytest.mark.parametrize(
    ("delta", "words"),
    [
        (timedelta(seconds=90), "90 s"),
        (timedelta(minutes=42), "42 min"),
        (timedelta(hours=5, minutes=3), "5 h 3 min"),
        (timedelta(days=3, hours=1), "3 days"),
    ],
)
def test_a_wait_is_said_in_the_unit_a_person_reads(
    delta: timedelta, words: str
) -> None:
    assert health.duration(delta) == words


def test_the_json_redacts_a_key_configured_after_the_pause_quoted_it(
    make_events: MakeEvents, settings: Any
) -> None:
    make_events(1, next_attempt_at=timezone.now() + timedelta(minutes=5))
    PixelPause.objects.create(
        pixel_id="test-pixel",
        paused_until=timezone.now() + timedelta(minutes=5),
        needs_attention=True,
        error="HTTP 401: key sk-later-SECRET-key refused",
        advice="Replace sk-later-SECRET-key.",
    )
    settings.OPENAI_CAPI_API_KEY = "sk-later-SECRET-key"

    document = json.dumps(health.assess().as_json())

    assert "SECRET" not in document
    assert "[redacted]" in document
