"""The outbox in the Django admin: what was recorded, sent, and why not.

Rows change only through delivery and the event list's actions (resend, cancel, each
behind a permission of its own): nothing here adds, edits or deletes one. Every list
stays fast on a table of millions: no full count, no date hierarchy, filters whose
choices come from bounded sources, exact searches on indexed columns.
"""

from __future__ import annotations

from django_openai_capi.admin.batches import DeliveryBatchAdmin, PixelPauseAdmin
from django_openai_capi.admin.events import ConversionEventAdmin
from django_openai_capi.admin.status import DeliveryStatusAdmin

__all__ = [
    "ConversionEventAdmin",
    "DeliveryBatchAdmin",
    "DeliveryStatusAdmin",
    "PixelPauseAdmin",
]
