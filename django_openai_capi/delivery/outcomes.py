"""What became of a claim's events: each outcome written, logged, signalled and counted.

One method per outcome (:class:`Outcomes`), each doing all four in one place. Every
write is fenced: it touches only rows still ``sending`` under this claim's id, so a
worker that lost its lease (and whose events another worker took over) cannot
overwrite what the newer claim recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.db.models import F
from django.dispatch import Signal
from django.utils import timezone

from django_openai_capi import alerts, signals
from django_openai_capi.conf import conf
from django_openai_capi.db import chunked
from django_openai_capi.delivery import pauses
from django_openai_capi.delivery.advice import what_to_do
from django_openai_capi.delivery.claim import Claim, ClaimedEvent
from django_openai_capi.delivery.isolation import Accepted, Refused, Stopped
from django_openai_capi.delivery.policy import next_attempt
from django_openai_capi.delivery.report import DeliveryReport
from django_openai_capi.models import ConversionEvent, DeliveryBatch, ErrorKind
from django_openai_capi.redaction import describe_exception, format_traceback, redact

logger = logging.getLogger("django_openai_capi.delivery")

_Status = ConversionEvent.Status

VALIDATED = (
    "Validated by the API with validate_only (OPENAI_CAPI_VALIDATE_ONLY): accepted, "
    + "but not recorded by OpenAI. Resend it to send it for real."
)
OUT_OF_BUDGET = (
    "The API kept refusing this batch and the bad events could not all be isolated "
    + "within one claim's request budget; the rest is retried later."
)


class Outcomes:
    """The outcomes of one claim, counted into *report*."""

    def __init__(
        self, claim: Claim, report: DeliveryReport, *, using: str = "default"
    ) -> None:
        self.claim = claim
        self.report = report
        self.using = using
        self._all = {event.pk for event in claim.events}
        #: Events whose outcome is recorded (or was a newer claim's to record).
        self._settled: set[int] = set()
        #: Kinds of failure this claim has passed to ``alerts.events_failed``: one
        #: alert write per kind and claim, not one per failed event.
        self._told: set[ErrorKind] = set()

    def unsettled(self) -> list[ClaimedEvent]:
        """The claim's events still waiting for an outcome."""
        return [e for e in self.claim.events if e.pk not in self._settled]

    def expire_stale(self) -> list[ClaimedEvent]:
        """Expire the events too close to the end of their window; return the rest.

        One stale event would make the API refuse the whole batch.
        """
        stale = [event for event in self.claim.events if event.stale]
        if stale:
            message = (
                "Expired before it could be sent: its 7-day window was closing "
                + f"(checked {timezone.now():%Y-%m-%d %H:%M %Z}), and one stale event "
                + "makes the API refuse the whole batch."
            )
            self.report.expired += self._write(
                stale,
                status=_Status.EXPIRED,
                last_error=message,
                last_error_kind=ErrorKind.EXPIRED,
            )
            for event in stale:
                self._signal(signals.event_expired, event, ErrorKind.EXPIRED, message)
        return [event for event in self.claim.events if not event.stale]

    def accepted(
        self, step: Accepted[ClaimedEvent], row: DeliveryBatch, *, validate_only: bool
    ) -> None:
        """Events the API took: sent (or validated), with their request's *row*.

        The row and the outcome it caused are committed together, in one transaction.
        """
        now = timezone.now()
        values: dict[str, Any] = (
            {"status": _Status.CANCELLED, "last_error": VALIDATED}
            if validate_only
            # The API records nothing for a validate-only request, so "sent" would be
            # a lie; a resend from the admin sends them for real.
            else {"status": _Status.SENT, "sent_at": now, "last_error": ""}
        )
        try:
            with transaction.atomic(using=self.using):
                row.save(using=self.using, force_insert=True)
                written = self._write(
                    step.events,
                    last_http_status=step.answer.status,
                    last_error_kind="",
                    updated_at=now,
                    **values,
                )
        except Exception:
            # The row went with the rollback; the request was made all the same, and
            # its row is what support asks for (its request id).
            self._settled -= {event.pk for event in step.events}
            save_alone(row, self.using)
            raise
        if validate_only:
            self.report.validated += written
        else:
            self.report.sent += written
        if signals.batch_sent.has_listeners(DeliveryBatch):
            event_pks = [event.pk for event in step.events]
            signals.send(
                signals.batch_sent, DeliveryBatch, batch=row, event_pks=event_pks
            )

    def refused(self, step: Refused[ClaimedEvent]) -> None:
        """One event the API refused on its own (failed), or as too old (expired)."""
        event, answer = step.event, step.answer
        message = answer.quoting_request_id(f"Refused by the API: {step.message}")
        kind = ErrorKind.EXPIRED if step.too_old else ErrorKind.REJECTED
        written = self._write(
            [event],
            status=_Status.EXPIRED if step.too_old else _Status.FAILED,
            last_http_status=answer.status,
            last_error=redact(message),
            last_error_kind=kind,
        )
        if not written:
            return
        logger.warning(
            "Event %s %s of %s: %s",
            event.event_type,
            event.event_id,
            self.claim.pixel_id,
            redact(message),
        )
        if step.too_old:
            self.report.expired += 1
            self._signal(signals.event_expired, event, kind, message, answer.status)
        else:
            self.report.failed += 1
            self._signal(signals.event_failed, event, kind, message, answer.status)

    def stopped(self, step: Stopped[ClaimedEvent]) -> None:
        """Events left unsent: the pixel pauses, and they wait or are retried."""
        answer, pixel = step.answer, self.claim.pixel_id
        if answer is None:
            self._retry(step.events, kind=ErrorKind.REJECTED, message=OUT_OF_BUDGET)
            return
        fault = step.request_fault
        kind = ErrorKind.REQUEST if fault else answer.kind
        assert kind is not None  # an accepted answer stops nothing
        error = answer.quoting_request_id(answer.text)
        advice = what_to_do(answer, request_fault=fault)
        # Its 400 reads like a refused event: the events' error says otherwise.
        message = f"{error}. {advice}" if fault else error
        until = pauses.pause(
            pixel, answer, kind=kind, error=error, advice=advice, using=self.using
        )
        self.report.halted = True
        when = f"{until:%Y-%m-%d %H:%M:%S %Z}"
        if not (fault or answer.halts):
            self._retry(
                step.events,
                kind=kind,
                message=message,
                http_status=answer.status,
                retry_after=answer.retry_after,
            )
            logger.warning(
                "Sending %d events to pixel %s failed (%s); retrying with backoff, "
                + "pixel paused until %s.",
                len(step.events),
                pixel,
                message,
                when,
            )
            return
        # Not the events' fault: they wait for the pixel without using an attempt.
        self.report.retried += self._write(
            step.events,
            status=_Status.PENDING,
            attempts=F("attempts") - 1,
            next_attempt_at=until,
            last_http_status=answer.status,
            last_error=redact(message),
            last_error_kind=kind,
        )
        problem = message if fault else f"{message}. {advice}"
        self.report.problems.append(f"{pixel}: {problem}")
        logger.error(
            "The Conversions API refused pixel %s: %s Its events wait (no attempt "
            + "used) until %s, then delivery tries again.",
            pixel,
            problem,
            when,
        )

    def broken(self, exc: Exception) -> None:
        """A bug while delivering: the unsettled events go back, not stranded."""
        logger.error(
            "Delivering batch %s failed:\n%s", self.claim.id, format_traceback(exc)
        )
        message = (
            f"Delivery failed before recording an answer: {describe_exception(exc)}"
        )
        self._retry(self.unsettled(), kind=ErrorKind.NETWORK, message=message)

    def _retry(
        self,
        events: Sequence[ClaimedEvent],
        *,
        kind: ErrorKind,
        message: str,
        http_status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Put events back for a later attempt; fail those that used their last one.

        The next attempt is never scheduled past the event's window: at the latest it
        comes due as the window closes, and is expired then instead of waiting on.
        """
        limit = conf.OPENAI_CAPI_MAX_ATTEMPTS
        spent = [event for event in events if event.attempts >= limit]
        again = [event for event in events if event.attempts < limit]
        if spent:
            self._write(
                spent,
                status=_Status.FAILED,
                last_http_status=http_status,
                last_error=redact(
                    f"Gave up after {limit} {'attempt' if limit == 1 else 'attempts'}. "
                    f"Last: {message}"
                ),
                last_error_kind=kind,
            )
            self.report.failed += len(spent)
            for event in spent:
                self._signal(signals.event_failed, event, kind, message, http_status)
        if again:
            attempts = {event.attempts for event in again}
            self.report.retried += self._write(
                again,
                status=_Status.PENDING,
                next_attempt_at=next_attempt(attempts, retry_after=retry_after),
                last_http_status=http_status,
                last_error=redact(message),
                last_error_kind=kind,
            )

    def _write(self, events: Sequence[ClaimedEvent], **values: Any) -> int:
        """Update *events* still sending under this claim; how many were."""
        values.setdefault("lease_expires_at", None)
        values.setdefault("updated_at", timezone.now())
        rows = ConversionEvent.objects.using(self.using).held_by(self.claim.id)
        pks = {event.pk for event in events}
        if pks == self._all:
            # The whole claim: its id alone names exactly its rows still sending,
            # where a list of ids would cost a parameter (and an index probe) each.
            updated = rows.update(**values)
        else:
            updated = 0
            for chunk in chunked(sorted(pks), self.using):
                updated += rows.filter(pk__in=chunk).update(**values)
        self._settled |= pks
        return updated

    def _signal(
        self,
        signal: Signal,
        event: ClaimedEvent,
        kind: ErrorKind,
        message: str,
        http_status: int | None = None,
    ) -> None:
        if kind not in self._told:
            # The alert decides whether it is news (the first in a day of its kind).
            self._told.add(kind)
            alerts.events_failed(
                [(self.claim.pixel_id, kind, redact(message))], using=self.using
            )
        if not signal.has_listeners(ConversionEvent):
            return
        pixel, label = self.claim.pixel_id, event.source_label
        info = (event.pk, pixel, event.event_type, event.event_id, label, kind)
        error = redact(message)
        signals.send(
            signal,
            ConversionEvent,
            event=signals.EventInfo(*info, error=error, http_status=http_status),
        )


def save_alone(row: DeliveryBatch, using: str) -> None:
    """Write a request's row whose outcome could not be: it is what support asks for."""
    try:
        row.save(using=using, force_insert=True)
    except Exception as exc:
        logger.error(
            "Recording the request of batch %s failed too:\n%s",
            row.claim_id,
            format_traceback(exc),
        )
