"""The request log (one row per HTTP request) and the paused pixels."""

from __future__ import annotations

from django.contrib import admin
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from django_openai_capi.admin.base import ReadOnlyAdmin, error_block, error_excerpt
from django_openai_capi.admin.filters import PixelFilter
from django_openai_capi.models import DeliveryBatch, PixelPause


class _RedactedErrorAdmin(ReadOnlyAdmin):
    """Shows the ``error`` column only through redaction, in the list and on the page.

    The raw field would be shown as stored (the read-only page lists every field).
    """

    exclude = ["error"]
    readonly_fields = ["error_text"]

    @admin.display(description=_("error"))
    def error_excerpt(self, row: DeliveryBatch | PixelPause) -> str:
        return error_excerpt(row.error)

    @admin.display(description=_("error"))
    def error_text(self, row: DeliveryBatch | PixelPause) -> SafeString:
        return error_block(row.error)


@admin.register(DeliveryBatch)
class DeliveryBatchAdmin(_RedactedErrorAdmin):
    list_display = [
        "created_at",
        "pixel_id",
        "outcome",
        "http_status",
        "size",
        "duration_ms",
        "request_id",
        "validate_only",
        "error_excerpt",
        "worker",
    ]
    list_filter = ["outcome", "validate_only", PixelFilter]
    exact_search_fields = ("request_id",)
    ordering = ["-created_at"]


@admin.register(PixelPause)
class PixelPauseAdmin(_RedactedErrorAdmin):
    list_display = [
        "pixel_id",
        "paused_until",
        "failures",
        "reason",
        "http_status",
        "request_id",
        "error_excerpt",
    ]
