"""The event list's actions: thin shells over ``maintenance.resend`` and validation.

None of them sends inside the request: a resend puts events back for delivery, a
cancel takes them out, and a validation asks the API with ``validate_only`` (the API
records nothing, and no row changes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from django_openai_capi.admin import base
from django_openai_capi.api import spec
from django_openai_capi.conf import conf
from django_openai_capi.delivery.validation import Check, validate_events
from django_openai_capi.maintenance.resend import ChangeResult
from django_openai_capi.maintenance.resend import cancel as cancel_events
from django_openai_capi.maintenance.resend import resend as resend_events
from django_openai_capi.models import ConversionEvent
from django_openai_capi.redaction import redact

if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[Any]
else:
    _ModelAdmin = admin.ModelAdmin


@admin.action(
    permissions=["resend"],
    description=_("Resend the selected failed or cancelled events"),
)
def resend(
    model_admin: _ModelAdmin, request: HttpRequest, queryset: QuerySet[Any]
) -> None:
    if _beyond_the_count(model_admin, request, queryset):
        return
    result = resend_events(queryset)
    _report(
        model_admin,
        request,
        result,
        ngettext(
            "%(count)d event is pending again: delivery sends it with the same id.",
            "%(count)d events are pending again: delivery sends them with the same ids.",
            result.changed,
        ),
        str(_("Not resent")),
    )


@admin.action(
    permissions=["cancel"], description=_("Cancel the selected pending events")
)
def cancel(
    model_admin: _ModelAdmin, request: HttpRequest, queryset: QuerySet[Any]
) -> None:
    if _beyond_the_count(model_admin, request, queryset):
        return
    result = cancel_events(queryset, by=request.user.get_username())
    _report(
        model_admin,
        request,
        result,
        ngettext(
            "%(count)d event cancelled: it will not be sent.",
            "%(count)d events cancelled: they will not be sent.",
            result.changed,
        ),
        str(_("Not cancelled")),
    )


@admin.action(
    permissions=["validate"],
    description=_("Validate the selected events with the API (changes nothing)"),
)
def validate(
    model_admin: _ModelAdmin, request: HttpRequest, queryset: QuerySet[Any]
) -> TemplateResponse | None:
    limit = min(conf.OPENAI_CAPI_BATCH_SIZE, spec.MAX_EVENTS_PER_REQUEST)
    # The payload is not in the list's query; the selection is read again with it.
    selected = list(
        ConversionEvent.objects.using(queryset.db)
        .select_related("stored_payload")
        .filter(pk__in=queryset.order_by().values("pk"))
        .order_by("-pk")[: limit + 1]
    )
    if len(selected) > limit:
        model_admin.message_user(
            request,
            _(
                "Select at most %(limit)d events to validate (one request's worth, "
                + "OPENAI_CAPI_BATCH_SIZE): nothing was sent."
            )
            % {"limit": limit},
            messages.ERROR,
        )
        return None
    verdicts = validate_events(selected)
    rows = [
        {
            "pk": verdict.pk,
            "event_id": verdict.event_id,
            "event_type": verdict.event_type,
            "pixel_id": verdict.pixel_id,
            "check": verdict.check.value,
            "label": _LABELS[verdict.check],
            # Already redacted where it came from; again, for a key changed since.
            "message": redact(verdict.message),
            "http_status": verdict.http_status,
            "request_id": verdict.request_id,
        }
        for verdict in verdicts
    ]
    opts = model_admin.model._meta
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Validation with the API"),
        "opts": opts,
        "rows": rows,
        "valid": sum(1 for row in rows if row["check"] == Check.OK.value),
        "refused": sum(1 for row in rows if row["check"] == Check.REFUSED.value),
        "not_checked": sum(
            1 for row in rows if row["check"] == Check.NOT_CHECKED.value
        ),
    }
    return TemplateResponse(
        request, "admin/django_openai_capi/validation.html", context
    )


def _beyond_the_count(
    model_admin: _ModelAdmin, request: HttpRequest, queryset: QuerySet[Any]
) -> bool:
    """Refuse "select all" over more rows than the list counted, and say so.

    The list stops counting at ``COUNT_CAP`` and its "Select all N" link says N = the
    cap, but the selection is every matching row: a resend or cancel would touch an
    untold number of them (one unbounded UPDATE holding row locks delivery waits on).
    Ticked rows are a page's worth at most: only "select all" is counted, boundedly.
    """
    # Read as the action form's BooleanField reads it (the page's script posts "1").
    if request.POST.get("select_across", "") in ("", "0", "false", "False"):
        return False
    cap = base.COUNT_CAP
    if queryset.order_by()[: cap + 1].count() <= cap:
        return False
    model_admin.message_user(
        request,
        _(
            "More than %(cap)d events match, more than the list counts: nothing was "
            + "changed. Filter the list (status, type, pixel, error kind) down to at "
            + "most %(cap)d and select all again."
        )
        % {"cap": cap},
        messages.ERROR,
    )
    return True


_LABELS = {
    Check.OK: _("valid"),
    Check.REFUSED: _("refused"),
    Check.NOT_CHECKED: _("not checked"),
}


def _report(
    model_admin: _ModelAdmin,
    request: HttpRequest,
    result: ChangeResult,
    changed: str,
    refused: str,
) -> None:
    if result.changed:
        model_admin.message_user(
            request, changed % {"count": result.changed}, messages.SUCCESS
        )
    if result.refused_count:
        reasons = "; ".join(str(refusal) for refusal in result.refused)
        more = result.refused_count - len(result.refused)
        if more:
            reasons += f"; and {more} more"
        model_admin.message_user(
            request,
            f"{refused} ({result.refused_count}): {reasons}.",
            messages.WARNING,
        )
    if result.moved_on:
        model_admin.message_user(
            request,
            ngettext(
                "%(count)d event changed while this ran (delivery got to it first) "
                + "and was left as delivery wrote it.",
                "%(count)d events changed while this ran (delivery got to them first) "
                + "and were left as delivery wrote them.",
                result.moved_on,
            )
            % {"count": result.moved_on},
            messages.WARNING,
        )
