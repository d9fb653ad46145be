"""Sending one claim: the request (or, for a rejected batch, requests) and its outcomes."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from django_openai_capi import signals
from django_openai_capi.conf import conf
from django_openai_capi.delivery import outcomes, pauses
from django_openai_capi.delivery.advice import what_to_do
from django_openai_capi.delivery.answers import Answer, ask
from django_openai_capi.delivery.claim import Claim, ClaimedEvent, renew_lease
from django_openai_capi.delivery.isolation import (
    Accepted,
    Refused,
    Stopped,
    isolate,
)
from django_openai_capi.delivery.report import DeliveryReport
from django_openai_capi.models import (
    ConversionEvent,
    DeliveryBatch,
    ErrorKind,
    carried_pks,
)
from django_openai_capi.redaction import describe_exception, format_traceback, redact

logger = logging.getLogger("django_openai_capi.delivery")

_Status = ConversionEvent.Status


@dataclass(frozen=True, slots=True)
class Posted:
    """A claim's first request, sent ahead of ``deliver`` (see ``post_claim``)."""

    answer: Answer
    started: datetime

    @property
    def went_through(self) -> bool:
        return self.answer.accepted


def post_claim(claim: Claim, *, validate_only: bool) -> Posted | None:
    """Send the first request of *claim*: every event of it still in its window.

    Touches no database, so that it can run in another thread while the worker records
    the previous claim's outcome and claims the next one. ``None`` when the claim has
    nothing to send (``deliver`` expires its stale events).
    """
    payloads = [event.payload for event in claim.events if not event.stale]
    if not payloads:
        return None
    started = timezone.now()
    return Posted(ask(claim.pixel_id, payloads, validate_only=validate_only), started)


class LeaseLost(Exception):
    """Another worker took the claim's events back: this one must stop touching them."""


def deliver(
    claim: Claim,
    *,
    validate_only: bool,
    worker: str,
    using: str = "default",
    posted: Posted | None = None,
) -> DeliveryReport:
    """Send the events of *claim* and record every outcome.

    *posted* is the claim's first request when ``post_claim`` has already sent it; its
    answer is recorded and acted on exactly as if it had been sent here.
    """
    report = DeliveryReport()
    stale = [event for event in claim.events if event.stale]
    fresh = [event for event in claim.events if not event.stale]
    if stale:
        _expire(claim, stale, report, using)
    lease_seconds = conf.OPENAI_CAPI_LEASE_SECONDS
    started = time.monotonic()
    requests: list[DeliveryBatch] = []
    # The requests refused naming none of their events: the ones a request fault
    # found later is about.
    unblamed: list[DeliveryBatch] = []
    resolved: set[int] = set()

    def send(group: Sequence[ClaimedEvent]) -> Answer:
        # A long isolation can outlive the lease; renew it (fenced) rather than let a
        # second worker send the same events alongside this one.
        # Every event of the claim still sending, not only this group: the halves
        # waiting their turn would otherwise be taken back from under this worker.
        if (
            requests
            and time.monotonic() - started > lease_seconds / 3
            and not renew_lease(
                claim,
                [event.pk for event in fresh if event.pk not in resolved],
                using=using,
            )
        ):
            raise LeaseLost
        if posted is not None and not requests:
            # isolate() starts with the whole group: what post_claim sent.
            answer, request_started = posted.answer, posted.started
        else:
            request_started = timezone.now()
            answer = ask(
                claim.pixel_id,
                [event.payload for event in group],
                validate_only=validate_only,
            )
        batch = _record_request(
            claim,
            group,
            answer,
            # The first request of a claim takes the claim's id, so an event's
            # claim_id finds the request that carried it.
            row_id=uuid.uuid4() if requests else claim.id,
            validate_only=validate_only,
            worker=worker,
            started=request_started,
            using=using,
        )
        requests.append(batch)
        if answer.refused and not answer.blamed(len(group)):
            unblamed.append(batch)
        report.requests += 1
        return answer

    try:
        if posted is not None and posted.went_through:
            # The common case: nothing to isolate, and the request's row and the
            # outcome it caused are committed together, in one transaction.
            report.requests += 1

            def record_request() -> DeliveryBatch:
                return _record_request(
                    claim,
                    fresh,
                    posted.answer,
                    row_id=claim.id,
                    validate_only=validate_only,
                    worker=worker,
                    started=posted.started,
                    using=using,
                )

            accepted = Accepted(fresh, posted.answer)
            try:
                with transaction.atomic(using=using):
                    batch = record_request()
                    written = _mark_accepted(claim, accepted, validate_only, using)
            except Exception:
                # The request's row went with the rollback; the request was made all
                # the same, and its row is what support asks for (its request id).
                _record_request_alone(claim, record_request)
                raise
            _count_accepted(report, written, validate_only)
            _batch_sent(batch, accepted)
            return report
        for step in isolate(fresh, send):
            if isinstance(step, Accepted):
                _accepted(claim, step, requests[-1], validate_only, report, using)
                resolved.update(event.pk for event in step.events)
            elif isinstance(step, Refused):
                _refused(claim, step, report, using)
                resolved.add(step.event.pk)
            else:
                if step.request_fault:
                    _refused_requests(claim, unblamed, using)
                _stopped(claim, step, report, using)
                resolved.update(event.pk for event in step.events)
    except LeaseLost:
        logger.warning(
            "Lost the lease of batch %s while isolating rejected events; another "
            + "worker has taken them back.",
            claim.id,
        )
    except Exception as exc:
        # A bug here must not strand the claim in "sending" until its lease runs
        # out: what is still sending under this claim goes back, with backoff.
        logger.error("Delivering batch %s failed:\n%s", claim.id, format_traceback(exc))
        message = (
            f"Delivery failed before recording an answer: {describe_exception(exc)}"
        )
        put_back, exhausted = outcomes.mark_retry(
            claim,
            [event for event in fresh if event.pk not in resolved],
            kind=ErrorKind.NETWORK,
            message=message,
            http_status=None,
            retry_after=None,
            using=using,
        )
        report.retried += put_back
        _exhausted(claim, exhausted, ErrorKind.NETWORK, message, None, report)
    return report


def _record_request(
    claim: Claim,
    group: Sequence[ClaimedEvent],
    answer: Answer,
    *,
    row_id: uuid.UUID,
    validate_only: bool,
    worker: str,
    started: datetime,
    using: str,
) -> DeliveryBatch:
    return DeliveryBatch.objects.using(using).create(
        id=row_id,
        claim_id=claim.id,
        pixel_id=claim.pixel_id,
        size=len(group),
        # A group is drawn from the claim's events without repeats: as many is all.
        carried=""
        if len(group) == len(claim.events)
        else carried_pks(event.pk for event in group),
        validate_only=validate_only,
        outcome=answer.outcome,
        http_status=answer.status,
        duration_ms=answer.duration_ms,
        request_id=answer.request_id,
        error=answer.text,
        worker=worker[:128],
        created_at=started,
        finished_at=timezone.now(),
    )


def _refused_requests(
    claim: Claim, requests: Sequence[DeliveryBatch], using: str
) -> None:
    # Each was recorded as a rejection when its answer came, before delivery could
    # tell that the API refuses the request itself, not its events.
    DeliveryBatch.objects.using(using).filter(
        claim_id=claim.id,
        pk__in=[request.pk for request in requests],
        outcome=DeliveryBatch.Outcome.REJECTED,
    ).update(outcome=DeliveryBatch.Outcome.REQUEST_REFUSED)


def _record_request_alone(
    claim: Claim, record_request: Callable[[], DeliveryBatch]
) -> None:
    try:
        record_request()
    except Exception as exc:
        logger.error(
            "Recording the request of batch %s failed too:\n%s",
            claim.id,
            format_traceback(exc),
        )


def _accepted(
    claim: Claim,
    step: Accepted[ClaimedEvent],
    batch: DeliveryBatch,
    validate_only: bool,
    report: DeliveryReport,
    using: str,
) -> None:
    written = _mark_accepted(claim, step, validate_only, using)
    _count_accepted(report, written, validate_only)
    _batch_sent(batch, step)


def _mark_accepted(
    claim: Claim, step: Accepted[ClaimedEvent], validate_only: bool, using: str
) -> int:
    status = step.answer.status
    assert status is not None
    if validate_only:
        return outcomes.mark_validated(claim, step.events, status, using)
    return outcomes.mark_sent(claim, step.events, status, using)


def _count_accepted(report: DeliveryReport, written: int, validate_only: bool) -> None:
    if validate_only:
        report.validated += written
    else:
        report.sent += written


def _batch_sent(batch: DeliveryBatch, step: Accepted[ClaimedEvent]) -> None:
    if signals.batch_sent.has_listeners(DeliveryBatch):
        signals.send(
            signals.batch_sent,
            DeliveryBatch,
            batch=batch,
            event_pks=[event.pk for event in step.events],
        )


def _refused(
    claim: Claim, step: Refused[ClaimedEvent], report: DeliveryReport, using: str
) -> None:
    event = step.event
    message = f"Refused by the API: {step.message}"
    if step.answer.request_id:
        message += f" (request {step.answer.request_id})"
    if step.too_old:
        status, kind = _Status.EXPIRED, ErrorKind.EXPIRED
    else:
        status, kind = _Status.FAILED, ErrorKind.REJECTED
    written = outcomes.mark_refused(
        claim,
        event,
        status=status,
        kind=kind,
        message=message,
        http_status=step.answer.status,
        using=using,
    )
    if not written:
        return
    logger.warning(
        "Event %s %s of %s: %s",
        event.event_type,
        event.event_id,
        claim.pixel_id,
        redact(message),
    )
    if step.too_old:
        report.expired += 1
        _signal(signals.event_expired, claim, event, kind, message, step.answer.status)
    else:
        report.failed += 1
        _signal(signals.event_failed, claim, event, kind, message, step.answer.status)


def _stopped(
    claim: Claim, step: Stopped[ClaimedEvent], report: DeliveryReport, using: str
) -> None:
    answer = step.answer
    if answer is None:
        message = (
            "The API kept refusing this batch and the bad events could not all be "
            + "isolated within one claim's request budget; the rest is retried later."
        )
        put_back, exhausted = outcomes.mark_retry(
            claim,
            step.events,
            kind=ErrorKind.REJECTED,
            message=message,
            http_status=None,
            retry_after=None,
            using=using,
        )
        report.retried += put_back
        _exhausted(claim, exhausted, ErrorKind.REJECTED, message, None, report)
        return
    halts = step.request_fault or answer.halts
    kind = ErrorKind.REQUEST if step.request_fault else answer.kind
    assert kind is not None
    message = answer.quoting_request_id(answer.text)
    advice = what_to_do(answer, request_fault=step.request_fault) if halts else ""
    if step.request_fault:
        # Its 400 reads like a refused event: the events and the pause say otherwise.
        message += f". {advice}"
    until = pauses.pause(
        claim.pixel_id,
        kind=kind,
        error=message,
        http_status=answer.status,
        request_id=answer.request_id,
        retry_after=answer.retry_after,
        using=using,
    )
    report.halted = True
    if halts:
        report.retried += outcomes.mark_held(
            claim,
            step.events,
            until=until,
            kind=kind,
            message=message,
            http_status=answer.status,
            using=using,
        )
        problem = message if step.request_fault else f"{message}. {advice}"
        report.problems.append(f"{claim.pixel_id}: {problem}")
        logger.error(
            "The Conversions API refused pixel %s: %s Its events wait (no attempt "
            + "used) until %s, then delivery tries again.",
            claim.pixel_id,
            problem,
            f"{until:%Y-%m-%d %H:%M:%S %Z}",
        )
        return
    put_back, exhausted = outcomes.mark_retry(
        claim,
        step.events,
        kind=kind,
        message=message,
        http_status=answer.status,
        retry_after=answer.retry_after,
        using=using,
    )
    report.retried += put_back
    _exhausted(claim, exhausted, kind, message, answer.status, report)
    logger.warning(
        "Sending %d events to pixel %s failed (%s); retrying with backoff, pixel "
        + "paused until %s.",
        len(step.events),
        claim.pixel_id,
        message,
        f"{until:%Y-%m-%d %H:%M:%S %Z}",
    )


def _expire(
    claim: Claim, events: Sequence[ClaimedEvent], report: DeliveryReport, using: str
) -> None:
    message = (
        "Expired before it could be sent: its 7-day window was closing "
        + f"(checked {timezone.now():%Y-%m-%d %H:%M %Z}), and one stale event makes "
        + "the API refuse the whole batch."
    )
    report.expired += outcomes.mark_expired(claim, events, message, using)
    for event in events:
        _signal(signals.event_expired, claim, event, ErrorKind.EXPIRED, message, None)


def _exhausted(
    claim: Claim,
    events: Sequence[ClaimedEvent],
    kind: ErrorKind,
    message: str,
    http_status: int | None,
    report: DeliveryReport,
) -> None:
    report.failed += len(events)
    for event in events:
        _signal(signals.event_failed, claim, event, kind, message, http_status)


def _signal(
    signal: Signal,
    claim: Claim,
    event: ClaimedEvent,
    kind: ErrorKind,
    message: str,
    http_status: int | None,
) -> None:
    if not signal.has_listeners(ConversionEvent):
        return
    signals.send(
        signal,
        ConversionEvent,
        event=signals.EventInfo(
            pk=event.pk,
            pixel_id=claim.pixel_id,
            event_type=event.event_type,
            event_id=event.event_id,
            source_label=event.source_label,
            kind=kind,
            error=redact(message),
            http_status=http_status,
        ),
    )
