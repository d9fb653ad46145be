"""The event list and the read-only page of one event."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.timezone import localtime
from django.utils.translation import gettext_lazy as _

from django_openai_capi.admin import actions
from django_openai_capi.admin.base import ReadOnlyAdmin, error_block, error_excerpt
from django_openai_capi.admin.filters import PixelFilter
from django_openai_capi.delivery.claim import claim_ids_of
from django_openai_capi.models import ConversionEvent, DeliveryBatch
from django_openai_capi.redaction import redact

#: Requests listed on an event's page, the newest: a claim makes one, and a rejected
#: one about log2(batch size) more while its bad events are isolated.
MAX_BATCHES_SHOWN = 50

_LIST_COLUMNS = (
    "id",
    "pixel_id",
    "status",
    "event_type",
    "event_id",
    "source_label",
    "attempts",
    "next_attempt_at",
    "last_http_status",
    "last_error_kind",
    "last_error",
    "created_at",
    "sent_at",
)


@admin.register(ConversionEvent)
class ConversionEventAdmin(ReadOnlyAdmin):
    # What went wrong first, so that status, HTTP status and error are within a
    # 1280 px wide window beside the navigation and the filters; the rest may scroll.
    list_display = [
        "id",
        "status",
        "http_status",
        "error_excerpt",
        "event_id",
        "event_type",
        "source_label",
        "attempts",
        "next_attempt",
        "created",
    ]
    list_filter = ["status", "event_type", PixelFilter, "last_error_kind"]
    exact_search_fields = ("event_id", "source_label")
    search_help_text = _("An exact event ID or source, such as shop.Order:42.")
    ordering = ["-id"]
    actions = [actions.resend, actions.cancel, actions.validate]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "status",
                    ("pixel_id", "event_type", "event_id"),
                    "source_label",
                    ("event_time", "expires_at"),
                    ("created_at", "updated_at", "sent_at"),
                ]
            },
        ),
        (
            _("Delivery"),
            {
                "fields": [
                    ("attempts", "next_attempt_at", "lease_expires_at"),
                    ("last_http_status", "last_error_kind"),
                    "error",
                    "request_id",
                    "claim_id",
                    "batches",
                ]
            },
        ),
        (_("Payload"), {"fields": ["pretty_payload"]}),
    ]
    readonly_fields = ["error", "request_id", "batches", "pretty_payload"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        # The payload and context can be kilobytes a row: the list never reads them.
        # The event's page reads its one row in full, its payload in the same query.
        queryset = super().get_queryset(request)
        if request.resolver_match and request.resolver_match.url_name == (
            "django_openai_capi_conversionevent_changelist"
        ):
            return queryset.only(*_LIST_COLUMNS)
        return queryset.select_related("stored_payload")

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("django_openai_capi.resend_conversionevent")

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("django_openai_capi.cancel_conversionevent")

    def has_validate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("django_openai_capi.validate_conversionevent")

    @admin.display(description=_("HTTP"), ordering="last_http_status")
    def http_status(self, event: ConversionEvent) -> int | None:
        return event.last_http_status

    @admin.display(description=_("last error"), ordering="last_error")
    def error_excerpt(self, event: ConversionEvent) -> SafeString:
        # Cut to one line by the stylesheet; all of it (redacted) on hover.
        return format_html(
            '<span class="capi-excerpt" title="{}">{}</span>',
            redact(event.last_error),
            error_excerpt(event.last_error),
        )

    @admin.display(description=_("next attempt"), ordering="next_attempt_at")
    def next_attempt(self, event: ConversionEvent) -> str:
        return _short_time(event.next_attempt_at)

    @admin.display(description=_("created"), ordering="created_at")
    def created(self, event: ConversionEvent) -> str:
        return _short_time(event.created_at)

    @admin.display(description=_("last error"))
    def error(self, event: ConversionEvent) -> SafeString:
        return error_block(event.last_error)

    @admin.display(description=_("last request ID"))
    def request_id(self, event: ConversionEvent) -> str:
        # The last request that carried the event (for a refused one, the request
        # that refused it), or none: an older request's id would send support to the
        # wrong request.
        rows = self._batches(event)
        return (rows[-1].request_id or "—") if rows else "—"

    @admin.display(description=_("requests it went out in"))
    def batches(self, event: ConversionEvent) -> SafeString:
        rows = self._batches(event)
        if not rows:
            return format_html("{}", "—")
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
            + "<td>{}</td><td>{}</td></tr>",
            (
                (
                    f"{batch.created_at:%Y-%m-%d %H:%M:%S}",
                    batch.get_outcome_display(),
                    "—" if batch.http_status is None else batch.http_status,
                    batch.size,
                    "—" if batch.duration_ms is None else f"{batch.duration_ms} ms",
                    batch.request_id or "—",
                    redact(batch.error) or "—",
                )
                for batch in rows
            ),
        )
        return format_html(
            '<table class="capi-batches"><thead><tr><th>{}</th><th>{}</th><th>{}</th>'
            + "<th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>"
            + "<tbody>{}</tbody></table>",
            _("started"),
            _("outcome"),
            _("HTTP status"),
            _("events"),
            _("duration"),
            _("request ID"),
            _("error"),
            body,
        )

    @admin.display(description=_("payload (the JSON sent)"))
    def pretty_payload(self, event: ConversionEvent) -> SafeString:
        if event.payload is None:
            return format_html(
                "{}", _("Not built yet: built before its first delivery attempt.")
            )
        try:
            text = json.dumps(json.loads(event.payload), indent=2, ensure_ascii=False)
        except ValueError:
            # Not ours to trust: shown as it is stored.
            text = event.payload
        return format_html('<pre class="capi-payload">{}</pre>', text)

    def _batches(self, event: ConversionEvent) -> list[DeliveryBatch]:
        # Read once per page, for both the request id and the table.
        cached: list[DeliveryBatch] | None = getattr(event, "_capi_batches", None)
        if cached is None:
            claims = claim_ids_of(event)
            # The newest, shown oldest first: the last is the one that decided.
            cached = (
                list(
                    DeliveryBatch.objects.carrying(event.pk, claims).order_by(
                        "-created_at"
                    )[:MAX_BATCHES_SHOWN]
                )[::-1]
                if claims
                else []
            )
            event._capi_batches = cached  # type: ignore[attr-defined]
        return cached


def _short_time(when: datetime | None) -> str:
    # Half the width of the admin's "Dec. 3, 2026, 10:33 a.m.", which wraps in a list.
    return "—" if when is None else f"{localtime(when):%Y-%m-%d %H:%M}"
