"""Read-only admin pages for the outbox: what was recorded, sent, and why not.

Rows change only through delivery: nothing here adds, edits or deletes one. The lists
avoid what makes admin pages slow on big tables: no full-table count, no date
hierarchy, and searches that match the indexed columns exactly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from django_openai_capi.models import ConversionEvent, DeliveryBatch, PixelPause

if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[Model]
else:  # ModelAdmin is generic for the type checker only
    _ModelAdmin = admin.ModelAdmin


class ReadOnlyAdmin(_ModelAdmin):
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: Model | None = None
    ) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: Model | None = None
    ) -> bool:
        return False


@admin.register(ConversionEvent)
class ConversionEventAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "status",
        "event_type",
        "event_id",
        "source_label",
        "attempts",
        "next_attempt_at",
        "last_http_status",
        "last_error_kind",
        "created_at",
        "sent_at",
    ]
    list_filter = ["status", "event_type", "last_error_kind", "pixel_id"]
    search_fields = ["=event_id", "=source_label"]
    ordering = ["-id"]


@admin.register(DeliveryBatch)
class DeliveryBatchAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "pixel_id",
        "size",
        "outcome",
        "http_status",
        "duration_ms",
        "request_id",
        "validate_only",
        "worker",
    ]
    list_filter = ["outcome", "validate_only", "pixel_id"]
    search_fields = ["=request_id", "=claim_id"]
    ordering = ["-created_at"]


@admin.register(PixelPause)
class PixelPauseAdmin(ReadOnlyAdmin):
    list_display = [
        "pixel_id",
        "paused_until",
        "failures",
        "reason",
        "http_status",
        "error",
    ]
