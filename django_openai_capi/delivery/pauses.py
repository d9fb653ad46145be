"""Holding a pixel back after a failure that is the pixel's, not its events'.

A refused key (401/403), a rate limit (429), an outage (5xx) or no answer at all would
refuse every other batch of the pixel too. The pause is a row every worker reads before
claiming; it doubles with each consecutive failure and ends at the first success.
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from django_openai_capi.delivery.answers import Answer
from django_openai_capi.delivery.policy import retry_delay
from django_openai_capi.models import ConversionEvent, ErrorKind, PixelPause
from django_openai_capi.redaction import redact


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
    using: str = "default",
) -> datetime:
    """Pause *pixel_id* after one more failure (*answer*); return when the pause ends.

    *kind* and *error* are how delivery filed the failure.
    """
    try:
        return _pause(pixel_id, answer, kind, error, using)
    except IntegrityError:
        # Another worker paused the pixel first, between our read and our insert:
        # its row is there now, so a second try updates it.
        return _pause(pixel_id, answer, kind, error, using)


def _pause(
    pixel_id: str, answer: Answer, kind: ErrorKind, error: str, using: str
) -> datetime:
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
        row.http_status = answer.status
        row.request_id = answer.request_id
        row.save(using=using)
    return row.paused_until


def resume(pixel_id: str, *, using: str = "default") -> None:
    """End the pixel's pause (a request succeeded, or verify passed).

    Events held back by the pause (a refused key, a wrong endpoint, a refused request)
    are due again at once: they waited for the pixel, not for a backoff of their own.
    """
    deleted, _ = PixelPause.objects.using(using).filter(pixel_id=pixel_id).delete()
    if deleted:
        now = timezone.now()
        ConversionEvent.objects.using(using).filter(
            pixel_id=pixel_id,
            status=ConversionEvent.Status.PENDING,
            next_attempt_at__gt=now,
            last_error_kind__in=[
                ErrorKind.AUTH,
                ErrorKind.UNEXPECTED,
                ErrorKind.REQUEST,
            ],
        ).update(next_attempt_at=now)
