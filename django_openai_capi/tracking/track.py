"""``track()``: a conversion that is not a model save (a lead form, a webhook).

The event is built and validated at once (its data is in the call, not in rows still
to be committed) and stored in the caller's transaction, with the same guarantees as a
model conversion: one row per (pixel, type, id), nothing recorded if the transaction
rolls back, and a failure recorded rather than raised unless the project asks for it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime

from django.db import DEFAULT_DB_ALIAS
from django.http import HttpRequest
from django.utils import timezone

from django_openai_capi.api import spec
from django_openai_capi.api.events import encode_event
from django_openai_capi.api.validation import now_ms
from django_openai_capi.api.values import given, one_of, plain
from django_openai_capi.conf import conf
from django_openai_capi.exceptions import (
    CapiConfigurationError,
    ConversionError,
    EventValidationError,
    ValidationIssue,
)
from django_openai_capi.models import ACCEPTANCE_WINDOW, ConversionEvent, ErrorKind
from django_openai_capi.redaction import redact
from django_openai_capi.tracking.consent import ConsentEvent, consent_given
from django_openai_capi.tracking.context import (
    RequestContext,
    current_context,
    current_request,
)
from django_openai_capi.tracking.enrich import build_with_context
from django_openai_capi.tracking.recording import (
    Origin,
    check_identity,
    expire_if_too_old,
    failed_event,
    record,
)

logger = logging.getLogger("django_openai_capi.tracking")

#: Prefix of the id a failed row gets when the call's own event id was unusable.
INVALID_ID_PREFIX = "invalid-id:"


def track(
    event_type: str,
    *,
    event_id: str,
    user: Mapping[str, object] | None = None,
    data: Mapping[str, object] | None = None,
    request: HttpRequest | None = None,
    event_time: datetime | None = None,
    custom_event_name: str | None = None,
    pixel_id: str | None = None,
    source_url: str | None = None,
    oppref: str | None = None,
    opt_out: bool = False,
    action_source: str | None = None,
    source_label: str = "",
    using: str = DEFAULT_DB_ALIAS,
) -> bool:
    """Record one conversion event; return whether a new one was recorded.

    ``user`` is raw identity and ``data`` the ``data`` object without ``type``, as for
    :class:`~django_openai_capi.ModelConversion`; ``event_type`` is a string or an
    :class:`~django_openai_capi.EventType`. With ``request`` (or, without it,
    inside a request the middleware serves), what the caller does not give is taken
    from it: ``oppref`` (the ``oppref`` query parameter, else the ``__oppref`` cookie),
    ``obref`` (``__obref`` cookie), the client IP, the user agent, and the page's URL
    (without its query string) as ``source_url``.

    Returns False when an event with the same pixel, type and id exists already, or
    when ``OPENAI_CAPI_CONSENT`` refuses it (then nothing is recorded). An
    unknown ``event_type`` raises :class:`EventValidationError`, as a typo should. Any
    other problem (invalid data, no pixel configured) records the event as failed with
    the reason and logs it, or, with ``OPENAI_CAPI_RAISE_ERRORS``, raises.
    """
    if not one_of(event_type, spec.EVENT_TYPES):
        raise EventValidationError(
            [
                ValidationIssue(
                    "type",
                    "invalid_event_type",
                    f"unknown event type {given(event_type)}",
                )
            ]
        )
    # An EventType is stored, sent and named in errors as its plain string.
    event_type = plain(event_type)
    when = timezone.now() if event_time is None else event_time
    if request is not None:
        context = RequestContext.from_request(request)
    else:
        context = current_context() or RequestContext()
    try:
        pixel = pixel_id or conf.default_pixel_id()
        check_identity(
            pixel_id=pixel,
            event_id=event_id,
            event_time=when,
            event_type=event_type,
            source_label=source_label,
            origin=lambda: _ORIGIN if pixel_id else _ORIGIN_DEFAULT_PIXEL,
        )
        when = when.astimezone(UTC)  # stored in UTC: see check_identity
    except (ConversionError, CapiConfigurationError) as exc:
        if conf.OPENAI_CAPI_RAISE_ERRORS:
            raise
        event = _failure(
            exc,
            event_type=event_type,
            event_id=event_id,
            event_time=when,
            pixel_id=pixel_id or conf.OPENAI_CAPI_PIXEL_ID,
            source_label=source_label,
        )
    else:
        event = ConversionEvent(
            pixel_id=pixel,
            event_type=event_type,
            event_id=event_id,
            event_time=when,
            expires_at=when + ACCEPTANCE_WINDOW,
            source_label=source_label,
        )
    # Asked with the identity the row will have: a refused value is asked about as it
    # is stored, so that a consent callable never gets what cannot be stored either.
    asked = ConsentEvent(
        pixel_id=event.pixel_id,
        event_type=event.event_type,
        event_id=event.event_id,
        source_label=event.source_label,
    )
    if not consent_given(request or current_request(), asked):
        return False
    if event.status == ConversionEvent.Status.PENDING:
        try:
            event.payload = encode_event(
                build_with_context(
                    event_type,
                    context=context,
                    event_id=event_id,
                    event_time=when,
                    data=data,
                    user=user,
                    custom_event_name=custom_event_name,
                    action_source=action_source,
                    source_url=source_url,
                    oppref=oppref,
                    opt_out=opt_out,
                    now=now_ms(),
                )
            )
        except EventValidationError as exc:
            if conf.OPENAI_CAPI_RAISE_ERRORS:
                raise
            event = _failure(
                exc,
                event_type=event_type,
                event_id=event_id,
                event_time=when,
                pixel_id=pixel,
                source_label=source_label,
            )
            # Too old is not bad data: the conversion came too late, as one built too
            # late does.
            expire_if_too_old(event)
    return record(event, using=using)


#: Where track()'s identity values come from, as its errors name them.
_ORIGIN = Origin(
    pixel_id="track(pixel_id=...)",
    event_id="track(event_id=...)",
    event_time="track(event_time=...)",
    event_type="track(event_type)",
    source_label="track(source_label=...)",
)
_ORIGIN_DEFAULT_PIXEL = replace(_ORIGIN, pixel_id="OPENAI_CAPI_PIXEL_ID")


def _failure(
    exc: Exception,
    *,
    event_type: str,
    event_id: object,
    event_time: object,
    pixel_id: object,
    source_label: object,
) -> ConversionEvent:
    message = f"track({event_type!r}) could not record its event: {redact(str(exc))}"
    logger.error("%s", message)
    return failed_event(
        pixel_id=pixel_id,
        event_type=event_type,
        event_id=event_id,
        # The row needs an id to exist at all; a fresh one keeps the failure visible.
        fallback_event_id=f"{INVALID_ID_PREFIX}{uuid.uuid4().hex}",
        event_time=event_time,
        kind=ErrorKind.INVALID
        if isinstance(exc, EventValidationError)
        else ErrorKind.BUILD,
        error=message,
        source_label=source_label,
    )
