"""List filters whose choices never come from a scan of the table they filter.

Django's default filter for a plain column runs ``SELECT DISTINCT`` over the whole
table to find its choices. The pixels of an outbox are known without that: the
configured ones, the paused ones, and those of recent requests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from django_openai_capi.conf import conf
from django_openai_capi.models import DeliveryBatch, PixelPause

#: Requests looked at for their pixels: the recent ones, at most this many.
RECENT_BATCHES = 1000
RECENT_DAYS = 7


def known_pixels() -> list[str]:
    """Pixels the settings, the pauses and the last week's requests name, sorted."""
    pixels: set[str] = set()
    if conf.OPENAI_CAPI_PIXEL_ID:
        pixels.add(conf.OPENAI_CAPI_PIXEL_ID)
    keys = conf.OPENAI_CAPI_PIXEL_API_KEYS
    # A malformed setting is the checks' to report; the filter still works without it.
    if isinstance(keys, Mapping):
        pixels.update(str(pixel) for pixel in keys)
    pixels.update(PixelPause.objects.values_list("pixel_id", flat=True))
    since = timezone.now() - timedelta(days=RECENT_DAYS)
    recent = (
        DeliveryBatch.objects.filter(created_at__gte=since)
        .order_by("-created_at")
        .values_list("pixel_id", flat=True)[:RECENT_BATCHES]
    )
    pixels.update(recent)
    return sorted(pixels)


class PixelFilter(admin.SimpleListFilter):
    title = _("pixel")
    parameter_name = "pixel_id"

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]
    ) -> Iterable[tuple[str, str]]:
        pixels = known_pixels()
        chosen = self.value()
        # A pixel typed into the URL is still offered, so that the filter shows it.
        if chosen and chosen not in pixels:
            pixels.append(chosen)
        return [(pixel, pixel) for pixel in pixels]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[Model]
    ) -> QuerySet[Model]:
        chosen = self.value()
        return queryset if chosen is None else queryset.filter(pixel_id=chosen)
