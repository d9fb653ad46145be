"""Is delivery healthy? Per pixel: what waits, since when, what holds it back.

One assessment, read by everything that tells a person or a machine: the send command's
exit status, ``manage.py openai_capi_status``, the django-health-check backend, the
alerts (``alerts.py``) and the admin's status page. Each reads :func:`assess`, so they
cannot disagree about what is wrong.

A pixel has a problem when:

* ``no_key``: it has pending events and no usable Conversions API key;
* ``paused``: the API refused its requests (a key, an outage, a refused request) and
  delivery holds its events back until a request succeeds;
* ``stale``: events have been due for longer than ``OPENAI_CAPI_STALE_AFTER``: no
  worker is sending them (one that was never started looks exactly like this), or too
  few to keep up;
* ``failed``: events failed or expired in the last 24 hours; they will not be sent.

The first three stop conversions from flowing and make a pixel unhealthy; failed events
are each their own conversion's fault, and count as unhealthy only where asked for
(``--fail-on-error``).

Every figure is one or two index probes per pixel, so this is cheap enough for a load
balancer's probe: counts stop at :data:`COUNT_CAP`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone

from django_openai_capi.conf import conf
from django_openai_capi.db import within_index
from django_openai_capi.models import (
    ConversionEvent,
    DeliveryBatch,
    ErrorKind,
    PixelPause,
)
from django_openai_capi.redaction import redact

_Status = ConversionEvent.Status

#: Counts stop here: "more than 10,000 pending" is as actionable as the exact figure.
COUNT_CAP = 10_000
#: How far back failed and expired events are counted.
FAILURE_WINDOW = timedelta(hours=24)


class Problem(enum.StrEnum):
    """What can be wrong with a pixel's delivery, most urgent first."""

    NO_KEY = "no_key"
    PAUSED = "paused"
    STALE = "stale"
    FAILED = "failed"


class ExitCode(enum.IntEnum):
    """The exit status of ``openai_capi_send`` and ``openai_capi_status`` (and of
    ``openai_capi_backfill``: 1 or 4).

    One code per cause, so that cron, systemd or a monitor can act on it; when several
    causes hold, the code is the most urgent one's (the order of :class:`Problem`).
    """

    OK = 0
    #: A bad option, or an error that stopped the command (Django's CommandError).
    ERROR = 1
    #: argparse: an unknown option or a missing value.
    USAGE = 2
    #: A pixel is paused: the API refused its requests (key, pixel, endpoint, outage).
    PAUSED = 3
    #: Events failed or expired (the send command: in this run; the status command:
    #: in the last 24 hours). Only with ``--fail-on-error``.
    FAILED = 4
    #: Events have been due for longer than the threshold: no worker is keeping up.
    STALE = 5
    #: A pixel has events and no usable API key.
    NO_KEY = 6
    #: Stopped by a second Ctrl-C.
    INTERRUPTED = 130


EXIT_CODES: dict[Problem, ExitCode] = {
    Problem.NO_KEY: ExitCode.NO_KEY,
    Problem.PAUSED: ExitCode.PAUSED,
    Problem.STALE: ExitCode.STALE,
    Problem.FAILED: ExitCode.FAILED,
}

#: Problems that stop conversions from flowing.
UNHEALTHY = frozenset({Problem.NO_KEY, Problem.PAUSED, Problem.STALE})


def exit_code(problems: Iterable[Problem], *, fail_on_error: bool = False) -> ExitCode:
    """The exit status for *problems*: the most urgent one's code, or OK."""
    counted = set(problems) & (
        UNHEALTHY | ({Problem.FAILED} if fail_on_error else set())
    )
    for problem in Problem:
        if problem in counted:
            return EXIT_CODES[problem]
    return ExitCode.OK


@dataclass(frozen=True, slots=True)
class Pause:
    """Why a pixel's events are held back, from its ``PixelPause`` row."""

    since: datetime
    until: datetime
    #: ``ErrorKind`` value, and its label.
    reason: str
    reason_label: str
    http_status: int | None
    #: The API's error, redacted when the pause was recorded.
    error: str
    #: The answer's x-request-id: what OpenAI support asks for.
    request_id: str
    failures: int
    #: What to do, as delivery advised when it paused.
    advice: str
    #: Whether a person must hear of it (``pauses.needs_attention``): a passing 5xx or
    #: 429 pauses a pixel for a backoff, and is not a problem until it lasts.
    needs_attention: bool


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem of one pixel, in words a person can act on."""

    pixel_id: str
    problem: Problem
    #: One sentence: what is wrong.
    summary: str
    #: What to do about it.
    advice: str
    request_id: str = ""


@dataclass(frozen=True, slots=True)
class PixelHealth:
    pixel_id: str
    #: Pending events (built or not, due or waiting), up to COUNT_CAP.
    pending: int
    pending_capped: bool
    #: When the oldest due event became due (its next attempt), if one is due.
    oldest_due: datetime | None
    pause: Pause | None
    #: Why the pixel has no usable key; None when it has one.
    no_key: str | None
    #: Events that failed, and that expired, in the last 24 hours.
    failed_24h: int
    expired_24h: int
    #: The last request the API accepted (not validate-only), and its request id.
    last_accepted: datetime | None
    last_accepted_request_id: str
    findings: tuple[Finding, ...]

    @property
    def problems(self) -> tuple[Problem, ...]:
        return tuple(finding.problem for finding in self.findings)

    @property
    def healthy(self) -> bool:
        return not UNHEALTHY.intersection(self.problems)


@dataclass(frozen=True, slots=True)
class Health:
    now: datetime
    stale_after: timedelta
    pixels: tuple[PixelHealth, ...]

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(finding for pixel in self.pixels for finding in pixel.findings)

    @property
    def healthy(self) -> bool:
        return all(pixel.healthy for pixel in self.pixels)

    def exit_code(self, *, fail_on_error: bool = False) -> ExitCode:
        return exit_code(
            (finding.problem for finding in self.findings), fail_on_error=fail_on_error
        )

    def as_json(self) -> dict[str, Any]:
        """What ``openai_capi_status --json`` prints: plain types, times in ISO 8601.

        Its texts are redacted again, as the page and the command's text are: a pause
        stored before the key was configured could quote it.
        """
        return {
            "healthy": self.healthy,
            "checked_at": self.now.isoformat(),
            "stale_after_seconds": self.stale_after.total_seconds(),
            "pixels": [_pixel_json(pixel, self.now) for pixel in self.pixels],
        }


def _pixel_json(pixel: PixelHealth, now: datetime) -> dict[str, Any]:
    pause = pixel.pause
    return {
        "pixel_id": pixel.pixel_id,
        "healthy": pixel.healthy,
        "problems": [str(problem) for problem in pixel.problems],
        "pending": pixel.pending,
        "pending_capped": pixel.pending_capped,
        "oldest_due_at": _iso(pixel.oldest_due),
        "oldest_due_seconds": None
        if pixel.oldest_due is None
        else round((now - pixel.oldest_due).total_seconds(), 3),
        "paused": None
        if pause is None
        else {
            "since": pause.since.isoformat(),
            "until": pause.until.isoformat(),
            "reason": pause.reason,
            "http_status": pause.http_status,
            "error": redact(pause.error),
            "request_id": pause.request_id,
            "failures": pause.failures,
            "advice": redact(pause.advice),
        },
        "no_key": None if pixel.no_key is None else redact(pixel.no_key),
        "failed_24h": pixel.failed_24h,
        "expired_24h": pixel.expired_24h,
        "last_accepted_at": _iso(pixel.last_accepted),
        "last_accepted_request_id": pixel.last_accepted_request_id,
        "findings": [
            {
                "problem": str(finding.problem),
                "summary": redact(finding.summary),
                "advice": redact(finding.advice),
                "request_id": finding.request_id,
            }
            for finding in pixel.findings
        ],
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def stale_after() -> timedelta:
    return timedelta(seconds=conf.OPENAI_CAPI_STALE_AFTER)


def assess(
    *,
    pixel_ids: Iterable[str] | None = None,
    using: str = "default",
    now: datetime | None = None,
) -> Health:
    """The health of *pixel_ids*, or of every pixel delivery knows of.

    The pixels it knows of: the configured ones (``OPENAI_CAPI_PIXEL_ID``, the keys of
    ``OPENAI_CAPI_PIXEL_API_KEYS``), those with pending events, paused ones, and those
    with events failed in the last 24 hours.
    """
    now = timezone.now() if now is None else now
    events = ConversionEvent.objects.using(using)
    since = now - FAILURE_WINDOW
    failures = _failures(events, since)
    paused = pauses(using=using)
    if pixel_ids is None:
        known = set(conf.OPENAI_CAPI_PIXEL_API_KEYS) | set(paused)
        known |= {pixel for pixel, _ in failures}
        if conf.OPENAI_CAPI_PIXEL_ID:
            known.add(conf.OPENAI_CAPI_PIXEL_ID)
        known |= set(_pending_pixels(events))
        pixel_ids = known
    threshold = stale_after()
    return Health(
        now=now,
        stale_after=threshold,
        pixels=tuple(
            _pixel(pixel, events, paused.get(pixel), failures, now, threshold, using)
            for pixel in sorted(set(pixel_ids))
        ),
    )


def _pending_pixels(events: Any) -> list[str]:
    # A skip scan of the due index: one probe per pixel, not a DISTINCT over every
    # pending row.
    pending = within_index(events, "openai_capi_event_due")
    pixels: list[str] = []
    while True:
        after = pending if not pixels else pending.filter(pixel_id__gt=pixels[-1])
        found = after.order_by("pixel_id").values_list("pixel_id", flat=True).first()
        if found is None:
            return pixels
        pixels.append(found)


def _failures(events: Any, since: datetime) -> dict[tuple[str, str], int]:
    """``{(pixel, status): count}`` of events failed or expired since *since*."""
    rows = (
        within_index(events, "openai_capi_event_gave_up")
        .filter(status__in=[_Status.FAILED, _Status.EXPIRED], updated_at__gte=since)
        .order_by()
        .values("pixel_id", "status")
        .annotate(count=Count("id"))
    )
    return {(row["pixel_id"], row["status"]): row["count"] for row in rows}


def _pixel(
    pixel_id: str,
    events: Any,
    pause: Pause | None,
    failures: dict[tuple[str, str], int],
    now: datetime,
    threshold: timedelta,
    using: str,
) -> PixelHealth:
    pending = (
        within_index(events, "openai_capi_event_due")
        .filter(pixel_id=pixel_id)
        .order_by()[: COUNT_CAP + 1]
        .count()
    )
    oldest_due = _oldest_due(events, pixel_id, now)
    accepted = (
        DeliveryBatch.objects.using(using)
        .filter(
            Q(pixel_id=pixel_id),
            outcome=DeliveryBatch.Outcome.ACCEPTED,
            validate_only=False,
        )
        .order_by("-created_at")
        .values_list("finished_at", "created_at", "request_id")
        .first()
    )
    no_key = _no_key(pixel_id) if pending else None
    failed = failures.get((pixel_id, _Status.FAILED), 0)
    expired = failures.get((pixel_id, _Status.EXPIRED), 0)
    findings = _findings(
        pixel_id,
        pending=pending,
        no_key=no_key,
        pause=pause,
        oldest_due=oldest_due,
        now=now,
        threshold=threshold,
        failed=failed,
        expired=expired,
    )
    return PixelHealth(
        pixel_id=pixel_id,
        pending=min(pending, COUNT_CAP),
        pending_capped=pending > COUNT_CAP,
        oldest_due=oldest_due,
        pause=pause,
        no_key=no_key,
        failed_24h=failed,
        expired_24h=expired,
        last_accepted=None if accepted is None else accepted[0] or accepted[1],
        last_accepted_request_id="" if accepted is None else accepted[2],
        findings=findings,
    )


def _oldest_due(events: Any, pixel_id: str, now: datetime) -> datetime | None:
    """When the pixel's oldest due pending event came due, built or not.

    Not ``due()``, which only built events meet: a model conversion is recorded
    unbuilt, and it is the worker that builds it, so with no worker running its
    events would never look due. One probe of the due index, its condition written
    out so that SQLite uses it.
    """
    due: datetime | None = (
        within_index(events, "openai_capi_event_due")
        .filter(pixel_id=pixel_id, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "id")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    return due


def stale(
    *,
    pixel_ids: Iterable[str] | None = None,
    using: str = "default",
    now: datetime | None = None,
) -> dict[str, Finding]:
    """The pixels whose events have been due too long, and the finding for each.

    Two index probes per pixel with pending events: cheap enough for every pass of a
    worker.
    """
    now = timezone.now() if now is None else now
    events = ConversionEvent.objects.using(using).of_pixels(pixel_ids)
    threshold = stale_after()
    held = pauses(pixel_ids=pixel_ids, using=using)
    found: dict[str, Finding] = {}
    for pixel_id in _pending_pixels(events):
        if _no_key(pixel_id) is not None:
            continue  # its events wait for a key, not for a worker
        oldest = _oldest_due(events, pixel_id, now)
        finding = _stale_finding(pixel_id, oldest, held.get(pixel_id), now, threshold)
        if finding is not None:
            found[pixel_id] = finding
    return found


def _stale_finding(
    pixel_id: str,
    oldest_due: datetime | None,
    pause: Pause | None,
    now: datetime,
    threshold: timedelta,
) -> Finding | None:
    if oldest_due is None:
        return None
    # Events held back by a pause wait for it, not for a worker: a worker could only
    # have sent them once the pause's wait was over.
    waiting_since = oldest_due if pause is None else max(oldest_due, pause.until)
    if now - waiting_since <= threshold:
        return None
    return Finding(
        pixel_id,
        Problem.STALE,
        f"Events of pixel {pixel_id} have been due for "
        + f"{duration(now - waiting_since)}, longer than OPENAI_CAPI_STALE_AFTER "
        + f"({duration(threshold)}): no worker is sending them, or too few.",
        STALE_ADVICE,
    )


def pauses(
    *, pixel_ids: Iterable[str] | None = None, using: str = "default"
) -> dict[str, Pause]:
    """The pixels held back after a failed request (a ``PixelPause`` row), by pixel.

    Until a request succeeds, whether or not the pause's wait is over: a pixel whose
    key was revoked stays paused however many times its wait runs out.
    """
    rows = PixelPause.objects.using(using).order_by("pixel_id")
    if pixel_ids is not None:
        rows = rows.filter(pixel_id__in=list(pixel_ids))
    return {row.pixel_id: _pause(row) for row in rows}


def _pause(row: PixelPause) -> Pause:
    return Pause(
        since=row.since,
        until=row.paused_until,
        reason=row.reason,
        reason_label=ErrorKind.words(row.reason),
        http_status=row.http_status,
        error=row.error,
        request_id=row.request_id,
        failures=row.failures,
        advice=row.advice,
        needs_attention=row.needs_attention,
    )


def _no_key(pixel_id: str) -> str | None:
    # Imported here: the worker's modules import alerts, which import this one.
    from django_openai_capi.delivery.worker import configuration_problem

    return configuration_problem(pixel_id)


def _findings(
    pixel_id: str,
    *,
    pending: int,
    no_key: str | None,
    pause: Pause | None,
    oldest_due: datetime | None,
    now: datetime,
    threshold: timedelta,
    failed: int,
    expired: int,
) -> tuple[Finding, ...]:
    findings: list[Finding] = []
    if no_key is not None:
        findings.append(
            Finding(
                pixel_id,
                Problem.NO_KEY,
                f"Pixel {pixel_id} has events waiting that cannot be sent: no usable "
                + "Conversions API key (or another setting every request needs).",
                no_key,
            )
        )
    # A pause is a problem while it holds events back; one of a pixel with nothing to
    # send (say, one no longer used) waits harmlessly for the next request.
    if pause is not None and pause.needs_attention and pending:
        status = f"HTTP {pause.http_status}" if pause.http_status else "no answer"
        # The stored error usually starts with its status already ("HTTP 401: ...").
        error = (
            pause.error
            if pause.error.startswith(status)
            else f"{status}: {pause.error}"
        )
        requests = f"request{'s' if pause.failures != 1 else ''}"
        findings.append(
            Finding(
                pixel_id,
                Problem.PAUSED,
                f"Delivery to pixel {pixel_id} is paused since "
                + f"{pause.since:%Y-%m-%d %H:%M %Z} ({pause.failures} failed "
                + f"{requests} in a row; {error}).",
                pause.advice,
                pause.request_id,
            )
        )
    # Events that cannot be sent wait for a key, not for a worker.
    if no_key is None:
        stale_finding = _stale_finding(pixel_id, oldest_due, pause, now, threshold)
        if stale_finding is not None:
            findings.append(stale_finding)
    if failed or expired:
        parts = [f"{failed} failed"] if failed else []
        parts += [f"{expired} expired"] if expired else []
        findings.append(
            Finding(
                pixel_id,
                Problem.FAILED,
                f"Pixel {pixel_id}: {' and '.join(parts)} in the last 24 hours; "
                + "they will not be sent.",
                "Each failed event's last error says what to fix (the admin's event "
                + "list, filtered to failed); once fixed, resend them from there.",
            )
        )
    return tuple(findings)


STALE_ADVICE = (
    "Check that a delivery worker is running (manage.py openai_capi_send --loop, or "
    + "the task worker with OPENAI_CAPI_DISPATCH = 'task') and that its log shows "
    + "no errors. If workers are running and busy, add more: they share the work "
    + "safely."
)


def duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} days"
