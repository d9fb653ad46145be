"""The status page: how delivery is doing, linked from the admin index.

Registered for the ``DeliveryStatus`` proxy model, so that it appears in the app's
list on the index of any admin site it is registered on, and behind that site's login
(``admin_view``). A project with its own ``AdminSite`` registers it there:
``site.register(DeliveryStatus, DeliveryStatusAdmin)``.

The page opens with what is wrong: a banner per finding of ``health.assess()`` that
stops conversions from flowing (a paused pixel, a missing key, events due too long),
with the cause and the fix, and a note for failed events. Then the counts, two charts
of the last days and the last error of each kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _

from django_openai_capi.admin.base import NoWritesAdmin
from django_openai_capi.admin.chart import Series, hourly_chart
from django_openai_capi.health import UNHEALTHY, Finding, PixelHealth, assess
from django_openai_capi.maintenance.status import (
    COUNT_CAP,
    DAYS,
    Hour,
    delivery_status,
)
from django_openai_capi.models import ConversionEvent, DeliveryBatch, DeliveryStatus
from django_openai_capi.redaction import redact


@dataclass(frozen=True, slots=True)
class Banner:
    """One finding of one pixel, as the page shows it: a banner, or a note."""

    finding: Finding
    pixel: PixelHealth
    #: A banner stops conversions from flowing; a note (failed events) does not.
    urgent: bool
    #: The pause's error and the advice, redacted again for a key configured since.
    error: str
    advice: str


@dataclass(frozen=True, slots=True)
class Chart:
    """A chart, its caption and the series its legend lists, with their totals."""

    id: str
    caption: str
    svg: SafeString
    series: tuple[Series, ...]


def banners(pixels: tuple[PixelHealth, ...]) -> list[Banner]:
    """Every finding of *pixels*, in the order of ``assess()``."""
    return [
        Banner(
            finding=finding,
            pixel=pixel,
            urgent=finding.problem in UNHEALTHY,
            error=redact(pixel.pause.error) if pixel.pause else "",
            advice=redact(finding.advice),
        )
        for pixel in pixels
        for finding in pixel.findings
    ]


def events_chart(hours: tuple[Hour, ...]) -> Chart:
    caption = _t("Events sent vs failed per hour, last %(days)d days (UTC)") % {
        "days": len(hours) // 24
    }
    series = (
        Series("delivered", _t("sent"), tuple(h.delivered for h in hours)),
        Series("failed", _t("failed or expired"), tuple(h.failed for h in hours)),
    )
    svg = hourly_chart([h.start for h in hours], series, title=caption, stacked=False)
    return Chart("capi-chart-events", caption, svg, series)


def requests_chart(hours: tuple[Hour, ...]) -> Chart:
    caption = _t("Requests by outcome per hour, last %(days)d days (UTC)") % {
        "days": len(hours) // 24
    }
    every = (
        Series(
            outcome.value,
            str(outcome.label),
            tuple(h.requests.get(outcome.value, 0) for h in hours),
        )
        for outcome in DeliveryBatch.Outcome
    )
    # The legend lists the outcomes that occur: eight entries of zero would bury them.
    series = tuple(each for each in every if each.total)
    svg = hourly_chart([h.start for h in hours], series, title=caption, stacked=True)
    return Chart("capi-chart-requests", caption, svg, series)


@admin.register(DeliveryStatus)
class DeliveryStatusAdmin(NoWritesAdmin):
    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "",
                self.admin_site.admin_view(self.status_view),
                name="{}_{}_changelist".format(*info),
            )
        ]

    def has_view_permission(
        self, request: HttpRequest, obj: Model | None = None
    ) -> bool:
        return request.user.has_perm(
            f"{ConversionEvent._meta.app_label}.view_conversionevent"
        )

    def status_view(self, request: HttpRequest) -> HttpResponse:
        # admin_view has let in active staff only; the page also needs the view
        # permission of the events it counts.
        if not self.has_view_permission(request):
            raise PermissionDenied
        status = delivery_status()
        health = assess()
        found = banners(health.pixels)
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": _("Delivery status"),
            "opts": self.opts,
            "status": status,
            "health": health,
            "banners": [banner for banner in found if banner.urgent],
            "notes": [banner for banner in found if not banner.urgent],
            "chart_keys": ["delivered", "failed", *DeliveryBatch.Outcome.values],
            "count_cap": COUNT_CAP,
            "charts": [events_chart(status.hours), requests_chart(status.hours)],
            "last_errors": [
                (error, redact(error.error)) for error in status.last_errors
            ],
            "days": DAYS,
        }
        return TemplateResponse(
            request, "admin/django_openai_capi/status.html", context
        )
