"""Writing the outbox row in the host's transaction.

One ``INSERT ... ON CONFLICT DO NOTHING`` per conversion: the unique constraint on
(pixel, type, event id) turns a second save of the same order, or a re-fired signal,
into a no-op without a read first and without aborting a PostgreSQL transaction.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import connections, models
from django.db.models.constants import OnConflict
from django.db.models.sql.subqueries import InsertQuery
from django.utils import timezone

from django_openai_capi.conf import conf
from django_openai_capi.exceptions import ConversionError
from django_openai_capi.models import (
    ACCEPTANCE_WINDOW,
    EVENT_ID_MAX_LENGTH,
    PIXEL_ID_MAX_LENGTH,
    SOURCE_LABEL_MAX_LENGTH,
    ConversionEvent,
    ErrorKind,
)
from django_openai_capi.redaction import describe_exception
from django_openai_capi.tracking.conversion import ModelConversion
from django_openai_capi.tracking.registry import registry

logger = logging.getLogger("django_openai_capi.tracking")

_Status = ConversionEvent.Status


def on_post_save(
    sender: type[models.Model],
    instance: models.Model,
    created: bool,
    raw: bool,
    using: str,
    **kwargs: Any,
) -> None:
    """The ``post_save`` receiver: every model's saves pass here, so it must be cheap."""
    if raw:  # loaddata and fixtures: the rows are restored, not converted
        return
    conversion = registry.get(sender)
    if conversion is not None:
        record_save(conversion, instance, created=created, using=using)


def record_save(
    conversion: ModelConversion[Any],
    instance: models.Model,
    *,
    created: bool,
    using: str,
) -> bool:
    """Record the event of one save, if ``should_track`` says it is one.

    Returns whether a new row was written. The payload is left to the build step: it
    is built from the committed state, after the transaction that saved the object.
    """
    label = source_label(instance)
    try:
        if not conversion.should_track(instance, created):
            return False
        pixel_id = conversion.get_pixel_id(instance)
        event_id = conversion.get_event_id(instance)
        event_time = conversion.get_event_time(instance)
        check_identity(pixel_id=pixel_id, event_id=event_id, event_time=event_time)
    except Exception as exc:
        if conf.OPENAI_CAPI_RAISE_ERRORS:
            raise
        message = f"{type(conversion).__name__} could not identify the event of {label}: {describe_exception(exc)}"
        logger.exception("%s", message)
        return insert_event(
            failed_event(
                pixel_id=conversion.pixel_id or conf.OPENAI_CAPI_PIXEL_ID or "",
                event_type=conversion.event_type,
                event_id=default_event_id(instance),
                event_time=timezone.now(),
                kind=ErrorKind.BUILD,
                error=message,
                source_label=label,
            ),
            using=using,
        )
    return insert_event(
        ConversionEvent(
            pixel_id=pixel_id,
            event_type=conversion.event_type,
            event_id=event_id,
            event_time=event_time,
            expires_at=event_time + ACCEPTANCE_WINDOW,
            source_label=label,
        ),
        using=using,
    )


def check_identity(*, pixel_id: object, event_id: object, event_time: object) -> None:
    """Refuse what the outbox row cannot hold; raise :class:`ConversionError`."""
    if (
        not (isinstance(pixel_id, str) and pixel_id.strip())
        or len(pixel_id) > PIXEL_ID_MAX_LENGTH
    ):
        raise ConversionError(
            f"pixel_id must be a non-empty string of at most {PIXEL_ID_MAX_LENGTH} characters, "
            + f"got {type(pixel_id).__name__}"
        )
    if (
        not (isinstance(event_id, str) and event_id.strip())
        or len(event_id) > EVENT_ID_MAX_LENGTH
    ):
        raise ConversionError(
            f"event_id must be a non-empty string of at most {EVENT_ID_MAX_LENGTH} characters, "
            + f"got {_describe_id(event_id)}"
        )
    if not isinstance(event_time, datetime) or timezone.is_naive(event_time):
        raise ConversionError(
            "event_time must be a timezone-aware datetime, got "
            + (
                "a naive datetime"
                if isinstance(event_time, datetime)
                else type(event_time).__name__
            )
        )


def _describe_id(value: object) -> str:
    if isinstance(value, str):
        return (
            f"a string of {len(value)} characters"
            if value.strip()
            else "a blank string"
        )
    return type(value).__name__


def source_label(instance: models.Model) -> str:
    """``"shop.Order:42"``: the concrete model's label and the primary key."""
    return f"{_concrete(instance)._meta.label}:{instance.pk}"[:SOURCE_LABEL_MAX_LENGTH]


def default_event_id(instance: models.Model) -> str:
    """``ModelConversion.get_event_id``'s default, for when the hook itself failed."""
    return f"{_concrete(instance)._meta.label_lower}:{instance.pk}"[
        :EVENT_ID_MAX_LENGTH
    ]


def _concrete(instance: models.Model) -> type[models.Model]:
    model = instance._meta.concrete_model
    assert model is not None
    return model


def failed_event(
    *,
    pixel_id: str,
    event_type: str,
    event_id: str,
    event_time: datetime,
    kind: ErrorKind,
    error: str,
    source_label: str,
) -> ConversionEvent:
    """A row for a conversion that happened but cannot be sent as it is."""
    return ConversionEvent(
        pixel_id=pixel_id[:PIXEL_ID_MAX_LENGTH],
        event_type=event_type,
        event_id=event_id,
        event_time=event_time,
        expires_at=event_time + ACCEPTANCE_WINDOW,
        status=_Status.FAILED,
        last_error=error,
        last_error_kind=kind,
        source_label=source_label[:SOURCE_LABEL_MAX_LENGTH],
    )


def insert_event(event: ConversionEvent, *, using: str) -> bool:
    """Insert *event* unless one with its (pixel, type, id) exists; True if inserted."""
    opts = ConversionEvent._meta
    fields = [field for field in opts.concrete_fields if field is not opts.pk]
    query = InsertQuery(ConversionEvent, on_conflict=OnConflict.IGNORE)
    query.insert_values(fields, [event])
    # Not QuerySet.bulk_create(ignore_conflicts=True): it cannot tell whether the row
    # was written, and callers (and their tests) need to know.
    with connections[using].cursor() as cursor:
        for sql, params in query.get_compiler(using=using).as_sql():
            cursor.execute(sql, params)
        inserted: bool = cursor.rowcount == 1
    return inserted
