"""Holding a pixel back after a failure that is the pixel's, not its events'.

A refused key (401/403), a rate limit (429), an outage (5xx) or no answer at all would
refuse every other batch of the pixel too. The pause is a row every worker reads before
claiming; it doubles with each consecutive failure and ends at the first success.

A pause is told (``alerts.py``) when it starts, if its cause will not go away by itself
(a refused key, pixel or request, an endpoint that is not the API, OpenAI's
authentication outage), or once it has lasted :data:`TRANSIENT_FAILURES` failed requests
otherwise (a 5xx, a 429, no answer): a single 503 that the next retry gets past is not
worth an email. Its end is told when it was.
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from django_openai_capi import alerts
from django_openai_capi.delivery.answers import Answer, Cause
from django_openai_capi.delivery.policy import retry_delay
from django_openai_capi.models import ConversionEvent, ErrorKind, PixelPause
from django_openai_capi.redaction import redact

#: Kinds of failure that wait for the pixel to be fixed, not for a backoff.
WAITING_FOR_THE_PIXEL = (ErrorKind.AUTH, ErrorKind.UNEXPECTED, ErrorKind.REQUEST)
#: Failed requests in a row before a pause whose cause may pass by itself is told.
TRANSIENT_FAILURES = 3


def paused_until(pixel_id: str, *, using: str = "default") -> datetime | None:
    """When the pixel's pause ends, if it is paused now."""
    until = (
        PixelPause.objects.using(using)
        .filter(pixel_id=pixel_id, paused_until__gt=timezone.now())
        .values_list("paused_until", flat=True)
        .first()
    )
    return until


def pause(
    pixel_id: str,
    answer: Answer,
    *,
    kind: ErrorKind,
    error: str,
    advice: str,
    using: str = "default",
) -> datetime:
    """Pause *pixel_id* after one more failure (*answer*); return when the pause ends.

    *kind* and *error* are how delivery filed the failure, *advice* what to do.
    """
    try:
        row = _pause(pixel_id, answer, kind, error, advice, using)
    except IntegrityError:
        # Another worker paused the pixel first, between our read and our insert:
        # its row is there now, so a second try updates it.
        row = _pause(pixel_id, answer, kind, error, advice, using)
    return row.paused_until


def needs_attention(answer: Answer, kind: ErrorKind, failures: int) -> bool:
    """Whether a pause is one a person must hear of: the one rule for it.

    Its alert, the exit status of the commands, the health check and the status page's
    banner all follow it, so that a passing 429 fails no monitor that its alert spares.
    """
    lasting = kind in WAITING_FOR_THE_PIXEL or answer.cause is Cause.AUTH_OUTAGE
    return lasting or failures >= TRANSIENT_FAILURES


def _pause(
    pixel_id: str,
    answer: Answer,
    kind: ErrorKind,
    error: str,
    advice: str,
    using: str,
) -> PixelPause:
    # The row and its alert in one transaction, the row locked: a resume that deletes
    # the row waits for it, and clears the alert with it, so that no alert outlives its
    # pause (and silences the next one).
    with transaction.atomic(using=using):
        row = (
            PixelPause.objects.using(using)
            .select_for_update()
            .filter(pixel_id=pixel_id)
            .first()
        )
        if row is None:
            row = PixelPause(pixel_id=pixel_id)
        row.failures += 1
        row.paused_until = timezone.now() + retry_delay(
            row.failures, retry_after=answer.retry_after
        )
        row.reason = kind
        row.error = redact(error)
        row.advice = redact(advice)
        row.http_status = answer.status
        row.request_id = answer.request_id
        row.needs_attention = row.needs_attention or needs_attention(
            answer, kind, row.failures
        )
        row.save(using=using)
        if row.needs_attention:
            alerts.raise_alert(
                pixel_id,
                alerts.Condition.PAUSED,
                summary=f"Delivery to pixel {pixel_id} is paused after {row.failures} "
                + f"failed request{'s' if row.failures != 1 else ''}: {row.error}. "
                + "Its events are kept; the next try is at "
                + f"{row.paused_until:%Y-%m-%d %H:%M:%S %Z}.",
                advice=row.advice,
                request_id=answer.request_id,
                using=using,
            )
    return row


def resume(pixel_id: str, *, using: str = "default") -> None:
    """End the pixel's pause (a request succeeded, or verify passed).

    Events held back by the pause (a refused key, a wrong endpoint, a refused request)
    are due again at once: they waited for the pixel, not for a backoff of their own.
    """
    with transaction.atomic(using=using):
        deleted, _ = PixelPause.objects.using(using).filter(pixel_id=pixel_id).delete()
        if not deleted:
            return
        alerts.clear_alert(
            pixel_id,
            alerts.Condition.PAUSED,
            summary=f"Delivery to pixel {pixel_id} has resumed: the API accepted a "
            + "request again, and the events held back are being sent.",
            using=using,
        )
        now = timezone.now()
        ConversionEvent.objects.using(using).filter(
            pixel_id=pixel_id,
            status=ConversionEvent.Status.PENDING,
            next_attempt_at__gt=now,
            last_error_kind__in=WAITING_FOR_THE_PIXEL,
        ).update(next_attempt_at=now)
