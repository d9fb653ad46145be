"""The status page: how delivery is doing, linked from the admin index.

Registered for the ``DeliveryStatus`` proxy model, so that it appears in the app's
list on the index of any admin site it is registered on, and behind that site's login
(``admin_view``). A project with its own ``AdminSite`` registers it there:
``site.register(DeliveryStatus, DeliveryStatusAdmin)``.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.translation import gettext_lazy as _

from django_openai_capi.admin.base import NoWritesAdmin
from django_openai_capi.admin.chart import Bar, bar_chart
from django_openai_capi.maintenance.status import COUNT_CAP, DAYS, delivery_status
from django_openai_capi.models import ConversionEvent, DeliveryStatus
from django_openai_capi.redaction import redact


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
        hours = status.hours
        axis = (
            f"{hours[0].start:%b %d %H:00} UTC",
            f"{hours[-1].start:%b %d %H:00} UTC",
        )
        delivered = bar_chart(
            [
                Bar(h.delivered, f"{h.start:%Y-%m-%d %H:00}: {h.delivered:,} delivered")
                for h in hours
            ],
            title=str(
                _("Events delivered per hour, last %(days)d days") % {"days": DAYS}
            ),
            color="#417690",
            axis=axis,
        )
        failed = bar_chart(
            [
                Bar(
                    h.failed_requests,
                    f"{h.start:%Y-%m-%d %H:00}: {h.failed_requests:,} failed requests",
                )
                for h in hours
            ],
            title=str(
                _("Failed requests per hour, last %(days)d days") % {"days": DAYS}
            ),
            color="#ba2121",
            axis=axis,
        )
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": _("Delivery status"),
            "opts": self.opts,
            "status": status,
            "count_cap": COUNT_CAP,
            "delivered_chart": delivered,
            "failed_chart": failed,
            "delivered_total": sum(h.delivered for h in hours),
            "failed_total": sum(h.failed_requests for h in hours),
            "last_errors": [
                (error, redact(error.error)) for error in status.last_errors
            ],
            "days": DAYS,
        }
        return TemplateResponse(
            request, "admin/django_openai_capi/status.html", context
        )
