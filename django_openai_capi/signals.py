"""Signals for host projects: an event recorded, a batch sent, an event failed or expired.

They are sent with ``send_robust``: a receiver that raises is logged (redacted) and
cannot stop a save or a delivery.

* ``event_recorded(sender=ConversionEvent, event: ConversionEvent, using: str)`` — a row
  was written; sent once the transaction that wrote it has committed.
* ``batch_sent(sender=DeliveryBatch, batch: DeliveryBatch, event_pks: list[int])`` — the
  API accepted a request (``batch.validate_only`` tells a validation from a send). The
  batch row is for reading: delivery owns the rows.
* ``event_failed(sender=ConversionEvent, event: EventInfo)`` — the event will not be sent.
* ``event_expired(sender=ConversionEvent, event: EventInfo)`` — its 7-day window closed.
* ``delivery_alert(sender=PixelAlert, alert: alerts.Alert)`` — a pixel's delivery went
  wrong (paused, due events waiting too long, the first failure of a kind) or, with
  ``alert.raised`` False, recovered: once per change, not per event, as ADMINS are
  emailed. Connect a receiver to page someone or post to a chat.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.dispatch import Signal

from django_openai_capi.redaction import describe_exception

logger = logging.getLogger("django_openai_capi.signals")

event_recorded = Signal()
batch_sent = Signal()
event_failed = Signal()
event_expired = Signal()
delivery_alert = Signal()


@dataclass(frozen=True, slots=True)
class EventInfo:
    """What a receiver needs to know about an event that failed or expired."""

    pk: int
    pixel_id: str
    event_type: str
    event_id: str
    source_label: str
    #: ``ErrorKind`` value.
    kind: str
    error: str
    http_status: int | None = None


def send(signal: Signal, sender: type[Any], **kwargs: Any) -> None:
    """Send *signal* robustly: a failing receiver is logged and skipped."""
    for receiver, result in signal.send_robust(sender, **kwargs):
        if isinstance(result, Exception):
            logger.error(
                "Receiver %r of a django_openai_capi signal raised %s",
                receiver,
                describe_exception(result),
            )
