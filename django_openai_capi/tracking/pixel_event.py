"""The browser half of a recorded conversion: what the pixel's ``measure`` call carries.

The API keeps one event per Pixel ID, event name (``custom_event_name`` for a custom
event) and event id, whichever side reports it first. So the pixel's event is taken
from the outbox row the server recorded for the object, found through the same
conversion hooks (``get_pixel_id``, ``get_event_id``) that named the row: the ids are
decided once. An object without a recorded event (``should_track`` said no, or consent
was refused) gets no browser event either: there would be nothing to deduplicate, and
the two sides would disagree about whether it was a conversion at all.

The data is the server event's own, from its stored payload; before the build has run,
it is built here by the same code the build step uses.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from django.db import models, router

from django_openai_capi.api import spec
from django_openai_capi.api.values import given
from django_openai_capi.exceptions import ConversionError
from django_openai_capi.models import ConversionEvent
from django_openai_capi.redaction import describe_exception
from django_openai_capi.tracking.conversion import ModelConversion
from django_openai_capi.tracking.registry import registry

logger = logging.getLogger("django_openai_capi.tracking")


@dataclass(frozen=True, slots=True)
class PixelEvent:
    """One pixel event: ``oaiq("measure", event_name, data, options)`` to ``pixel_id``."""

    pixel_id: str
    event_name: str
    #: ``eventProps``: the event's ``data`` object, ``type`` included.
    data: dict[str, Any]
    #: ``eventOptions``: ``event_id``, and ``custom_event_name`` / ``opt_out`` if set.
    options: dict[str, Any]
    #: Where the event came from (``"shop.Order:42"``), for logs and consent.
    source_label: str


def conversion_for(obj: models.Model) -> ModelConversion[Any]:
    """The conversion registered for *obj*'s model; :class:`ConversionError` if none."""
    conversion = registry.get(type(obj))
    if conversion is None:
        raise ConversionError(
            f"{type(obj)._meta.label} has no registered conversion, so it has no "
            + "event for the pixel: register one with @register in a conversions.py."
        )
    return conversion


def pixel_event(obj: object) -> PixelEvent | None:
    """The pixel event for *obj*'s recorded conversion, or ``None`` if none was recorded.

    Raises :class:`ConversionError` when *obj* is not a registered conversion, or when
    a hook naming its event raises.
    """
    if not isinstance(obj, models.Model):
        # Typically a template variable that is not set: Django renders it as "".
        # The value, not its type: "got str" does not say that the variable was unset.
        what = "an empty string" if isinstance(obj, str) and not obj else given(obj)
        raise ConversionError(
            f"A saved model instance was expected, got {what}: "
            + "is the variable set in the template's context?"
        )
    conversion = conversion_for(obj)
    label = f"{conversion.model._meta.label}:{obj.pk}"
    try:
        pixel_id = conversion.get_pixel_id(obj)
        event_id = conversion.get_event_id(obj)
    except Exception as exc:
        raise ConversionError(
            f"{type(conversion).__name__} could not name the event of {label}: "
            + describe_exception(exc),
            source_label=label,
        ) from exc
    row = (
        ConversionEvent.objects.using(_outbox_database(obj))
        .filter(pixel_id=pixel_id, event_type=conversion.event_type, event_id=event_id)
        .select_related("stored_payload")
        .only("event_id", "event_time", "stored_payload")
        .first()
    )
    if row is None:
        return None
    event = _server_event(conversion, obj, row, label)
    options: dict[str, Any] = {"event_id": row.event_id}
    if conversion.custom_event_name is not None:
        options["custom_event_name"] = conversion.custom_event_name
    if event.get("opt_out") is True:
        options["opt_out"] = True
    return PixelEvent(
        pixel_id=pixel_id,
        event_name=conversion.event_type,
        data=event.get("data")
        or {"type": spec.EVENT_DATA_TYPES[conversion.event_type]},
        options=options,
        source_label=label,
    )


def _outbox_database(obj: models.Model) -> str:
    # Where record() wrote the event: with the object, unless a router keeps the
    # outbox out of that database.
    using = obj._state.db or router.db_for_write(type(obj))
    if router.allow_migrate_model(using, ConversionEvent):
        return using
    return router.db_for_write(ConversionEvent)


def _server_event(
    conversion: ModelConversion[Any],
    obj: models.Model,
    row: ConversionEvent,
    label: str,
) -> dict[str, Any]:
    if row.payload is not None:
        stored: dict[str, Any] = json.loads(row.payload)
        return stored
    try:
        # Not built yet (the worker has not run): build it as the worker will, minus
        # the request context, which the pixel's event does not carry.
        return conversion.build(obj, event_id=row.event_id, event_time=row.event_time)
    except Exception as exc:
        # The build step will record this failure on the event; the browser event
        # still carries the ids, which is what deduplication needs.
        logger.warning(
            "The pixel event of %s carries no data: %s",
            label,
            describe_exception(getattr(exc, "error", exc)),
        )
        return {}
