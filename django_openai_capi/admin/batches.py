"""The request log (one row per HTTP request) and the paused pixels."""

from __future__ import annotations

from django.contrib import admin

from django_openai_capi.admin.base import ReadOnlyAdmin
from django_openai_capi.admin.filters import PixelFilter
from django_openai_capi.models import DeliveryBatch, PixelPause


@admin.register(DeliveryBatch)
class DeliveryBatchAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "pixel_id",
        "outcome",
        "http_status",
        "size",
        "duration_ms",
        "request_id",
        "validate_only",
        "error",
        "worker",
    ]
    list_filter = ["outcome", "validate_only", PixelFilter]
    exact_search_fields = ("request_id",)
    ordering = ["-created_at"]


@admin.register(PixelPause)
class PixelPauseAdmin(ReadOnlyAdmin):
    list_display = [
        "pixel_id",
        "paused_until",
        "failures",
        "reason",
        "http_status",
        "request_id",
        "error",
    ]
