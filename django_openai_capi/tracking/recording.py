"""Writing the outbox row in the host's transaction.

One ``INSERT ... ON CONFLICT DO NOTHING`` per conversion: the unique constraint on
(pixel, type, event id) turns a second save of the same order, or a re-fired signal,
into a no-op without a read first and without aborting a PostgreSQL transaction.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from django.db import models, router, transaction
from django.utils import timezone

from django_openai_capi.api import spec
from django_openai_capi.api.identifiers import (
    EVENT_ID_MAX_LENGTH,
    EVENT_TYPE_MAX_LENGTH,
    PIXEL_ID_MAX_LENGTH,
    SOURCE_LABEL_MAX_LENGTH,
    pixel_id_problem,
    starts_like_api_key,
    storable,
    text_problem,
)
from django_openai_capi.api.values import one_of
from django_openai_capi.conf import conf
from django_openai_capi.dispatch import wake_up
from django_openai_capi.exceptions import ConversionError
from django_openai_capi.models import (
    ACCEPTANCE_WINDOW,
    ConversionEvent,
    ErrorKind,
    EventPayload,
)
from django_openai_capi.redaction import (
    REDACTED,
    describe_exception,
    format_traceback,
    redact,
)
from django_openai_capi.signals import event_recorded, send
from django_openai_capi.tracking.consent import ConsentEvent, consent_given
from django_openai_capi.tracking.context import (
    RequestContext,
    current_context,
    current_request,
)
from django_openai_capi.tracking.conversion import ModelConversion
from django_openai_capi.tracking.insert import insert_ignoring_conflict, new_event
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

    Returns whether a row was written. The payload is left to the build step: it is
    built from the committed state, after the transaction that saved the object. What
    the build cannot know later, the visitor's context in the request that saved the
    object, is kept on the row; ``OPENAI_CAPI_CONSENT`` decides before anything is.
    """
    label = f"{conversion.model._meta.label}:{instance.pk}"
    # What the hooks gave, kept for the failed row if one of them (or the check) fails.
    pixel_id: object = None
    event_id: object = None
    try:
        if not conversion.should_track(instance, created):
            return False
        pixel_id = conversion.get_pixel_id(instance)
        event_id = conversion.get_event_id(instance)
        event_time = conversion.get_event_time(instance)
        check_identity(
            pixel_id=pixel_id,
            event_id=event_id,
            event_time=event_time,
            event_type=conversion.event_type,
            source_label=label,
            origin=partial(Origin.of, conversion),
        )
        event_time = event_time.astimezone(UTC)
        context = _saving_context(conversion, instance)
    except Exception as exc:
        if conf.OPENAI_CAPI_RAISE_ERRORS:
            raise
        message = (
            f"{type(conversion).__name__} could not identify the event of "
            + f"{label[:SOURCE_LABEL_MAX_LENGTH]}: {describe_exception(exc)}"
        )
        logger.error("%s\n%s", message, format_traceback(exc))
        event = failed_event(
            pixel_id=pixel_id
            if pixel_id is not None
            else conversion.pixel_id or conf.OPENAI_CAPI_PIXEL_ID,
            event_type=conversion.event_type,
            event_id=event_id,
            fallback_event_id=f"{conversion.model._meta.label_lower}:{instance.pk}",
            event_time=timezone.now(),
            kind=ErrorKind.BUILD,
            error=message,
            source_label=label,
        )
    else:
        event = new_event(
            pixel_id=pixel_id,
            event_type=conversion.event_type,
            event_id=event_id,
            event_time=event_time,
            expires_at=event_time + ACCEPTANCE_WINDOW,
            source_label=label,
            context=context.to_json() if context is not None else None,
        )
        expire_if_too_old(event)
        if event.status != _Status.PENDING:
            event.context = None  # never built, so never read: not kept
    # Asked last, with the event's identity known; a refusal records nothing at all,
    # not even a failure.
    asked = ConsentEvent(
        pixel_id=event.pixel_id,
        event_type=event.event_type,
        event_id=event.event_id,
        source_label=label,
        obj=instance,
    )
    if not consent_given(current_request(), asked):
        return False
    return record(event, using=using)


def _saving_context(
    conversion: ModelConversion[Any], instance: models.Model
) -> RequestContext | None:
    """The context of the request saving *instance*, as the conversion keeps it."""
    context = current_context()
    if context is None:
        return None
    kept = conversion.get_request_context(instance, context)
    if kept is not None and not isinstance(kept, RequestContext):
        raise TypeError(
            "get_request_context() must return a RequestContext or None, got "
            + type(kept).__name__
        )
    return kept


def record(event: ConversionEvent, *, using: str) -> bool:
    """Store *event* with the host's write on *using*, or right after it commits.

    The outbox normally lives in every database the host writes to, and the row joins
    the host's transaction. Where a router keeps it out of *using*, the row is written
    to the outbox's own database once *using* commits: it still exists only if the
    host's write does, but a crash between the two commits can lose it.
    """
    if router.allow_migrate_model(using, ConversionEvent):
        return store_event(event, using=using)
    outbox = router.db_for_write(ConversionEvent)
    transaction.on_commit(
        lambda: store_event(event, using=outbox), using=using, robust=True
    )
    return True


def store_event(event: ConversionEvent, *, using: str) -> bool:
    """Insert *event*; if written, tell receivers and have it sent after the commit."""
    inserted = insert_event(event, using=using)
    if inserted:
        if event_recorded.has_listeners(ConversionEvent):
            # After the commit, outside the host's transaction: a receiver whose
            # query fails would otherwise abort it (PostgreSQL), and the host's save
            # with it; and a rolled-back event was never recorded.
            transaction.on_commit(
                partial(
                    send, event_recorded, ConversionEvent, event=event, using=using
                ),
                using=using,
                robust=True,
            )
        # A failed or expired row has nothing to send.
        if event.status == _Status.PENDING:
            wake_up(using)
    return inserted


@dataclass(frozen=True, slots=True)
class Origin:
    """Where each identity value came from (a hook, an argument, a setting): what an
    error names, so that the person reading it knows what to fix."""

    pixel_id: str
    event_id: str
    event_time: str
    event_type: str
    source_label: str

    @classmethod
    def of(cls, conversion: ModelConversion[Any]) -> Origin:
        """The hooks and attributes of a model conversion."""
        name = type(conversion).__name__
        if type(conversion).get_pixel_id is not ModelConversion.get_pixel_id:
            pixel = f"{name}.get_pixel_id()"
        elif conversion.pixel_id is not None:
            pixel = f"{name}.pixel_id"
        else:
            pixel = "OPENAI_CAPI_PIXEL_ID"
        return cls(
            pixel_id=pixel,
            event_id=f"{name}.get_event_id()",
            event_time=f"{name}.get_event_time()",
            event_type=f"{name}.event_type",
            source_label=f"the primary key of {conversion.model._meta.label}",
        )


def check_identity(
    *,
    pixel_id: object,
    event_id: object,
    event_time: object,
    event_type: object,
    source_label: object,
    origin: Callable[[], Origin],
) -> None:
    """Refuse what the outbox row cannot hold, or the API could never take.

    Every way an event is recorded (a save, ``track()``, a backfill) passes here
    before anything is written: a value the database cannot store would otherwise
    raise out of the ``INSERT`` and abort the host's transaction, order and all.
    Raises :class:`ConversionError` naming the field and where its value came from,
    which *origin* says; it is called only then, not on every tracked save.

    An event time that passes is stored converted to UTC: PostgreSQL takes no offset
    of 16 hours or more, nor one with a fraction of a second, that a ``tzinfo`` may
    have.
    """
    values = {
        "pixel_id": pixel_id,
        "event_id": event_id,
        "event_type": event_type,
        "source_label": source_label,
        "event_time": event_time,
    }
    found = []
    for field, rule, problem_of in _IDENTITY_RULES:
        problem = _checked(problem_of, values[field])
        if problem is not None:
            found.append((field, rule, problem))
    if found:
        named = origin()
        raise ConversionError(
            " ".join(
                f"{field} from {getattr(named, field)} {problem}; {field} must be {rule}."
                for field, rule, problem in found
            )
        )


def _checked(problem_of: Callable[[object], str | None], value: object) -> str | None:
    """What *problem_of* finds wrong with *value*, an exception it raises included.

    The value is the host's, and may run its own code when looked at (a ``str``
    subclass, a ``tzinfo``): what it raises is a problem with the value, to be
    refused by name like any other, not an error to escape the host's save.
    """
    try:
        return problem_of(value)
    except Exception as exc:
        return f"could not be checked ({describe_exception(exc)})"


#: Pixel IDs found valid: a site has one or a few, so each is checked once, not on
#: every save. Only valid ones are kept (a problem's wording may quote the value), and
#: only so many, whatever a hook returns.
_VALID_PIXEL_IDS: set[str] = set()
_VALID_PIXEL_IDS_KEPT = 64


def _pixel_id_problem(value: object) -> str | None:
    if type(value) is str and value in _VALID_PIXEL_IDS:
        return None
    problem = pixel_id_problem(value, redact=redact)
    if (
        problem is None
        and type(value) is str
        and len(_VALID_PIXEL_IDS) < _VALID_PIXEL_IDS_KEPT
    ):
        _VALID_PIXEL_IDS.add(value)
    return problem


def _event_id_problem(value: object) -> str | None:
    problem = text_problem(value, EVENT_ID_MAX_LENGTH, redact=redact)
    if problem is None and isinstance(value, str) and not value.strip():
        return "is blank"
    return problem


def _event_time_problem(value: object) -> str | None:
    if not isinstance(value, datetime):
        return f"is of type {type(value).__name__}, not a datetime"
    try:
        if value.utcoffset() is None:
            return "is a naive datetime"
        utc = value.astimezone(UTC)
    except Exception as exc:
        # A time near year 1 or 9999 can overflow when shifted to UTC, and the
        # tzinfo is the host's code: stored as it is, such a time would break the
        # INSERT (SQLite) or every later read of the row (PostgreSQL).
        return f"cannot be converted to UTC ({describe_exception(exc)})"
    if utc < EPOCH:
        return (
            f"is before 1970-01-01 UTC ({utc:%Y-%m-%d %H:%M:%S} UTC); "
            + "the API takes Unix milliseconds"
        )
    ahead = utc - timezone.now()
    if ahead > MAX_AHEAD:
        # The API refuses it now, and waiting for it would hold the event back
        # unseen: a clock or a hook is wrong, so say so.
        return (
            f"is {ahead.total_seconds() / 60:.0f} minutes in the future; "
            + "the API accepts at most 10"
        )
    return None


def _event_type_problem(value: object) -> str | None:
    if one_of(value, spec.EVENT_TYPES):
        return None
    return "is not one of the API's event types"


def _source_label_problem(value: object) -> str | None:
    return text_problem(value, SOURCE_LABEL_MAX_LENGTH, redact=redact)


#: Each identity field, what it must be (said by every error about it), and what
#: keeps a value from being that.
_IDENTITY_RULES: tuple[tuple[str, str, Callable[[object], str | None]], ...] = (
    (
        "pixel_id",
        f"a Pixel ID: a non-empty string of at most {PIXEL_ID_MAX_LENGTH} characters "
        + "without whitespace",
        _pixel_id_problem,
    ),
    (
        "event_id",
        f"a non-empty string of at most {EVENT_ID_MAX_LENGTH} characters, "
        + "without NUL characters or lone surrogates",
        _event_id_problem,
    ),
    (
        "event_type",
        "one of " + ", ".join(sorted(spec.EVENT_TYPES)),
        _event_type_problem,
    ),
    (
        "source_label",
        f"a string of at most {SOURCE_LABEL_MAX_LENGTH} characters, "
        + "without NUL characters or lone surrogates",
        _source_label_problem,
    ),
    (
        "event_time",
        "a timezone-aware datetime from 1970-01-01 UTC to 10 minutes ahead of the "
        + "clock",
        _event_time_problem,
    ),
)

#: How far ahead of the clock an event time may be (the API's limit).
MAX_AHEAD = timedelta(milliseconds=spec.MAX_EVENT_SKEW_MS)
#: The earliest event time: the API takes it as Unix milliseconds.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def expire_if_too_old(event: ConversionEvent) -> None:
    """Mark *event* expired if its time is already past the API's 7-day window."""
    if event.expires_at <= timezone.now():
        event.status = _Status.EXPIRED
        event.last_error_kind = ErrorKind.EXPIRED
        event.last_error = (
            "Recorded after its 7-day window had closed (event time "
            + f"{event.event_time:%Y-%m-%d %H:%M %Z}): the API would refuse it."
        )


def failed_event(
    *,
    pixel_id: object,
    event_type: str,
    event_id: object,
    fallback_event_id: str,
    event_time: object,
    kind: ErrorKind,
    error: str,
    source_label: object,
) -> ConversionEvent:
    """A row for a conversion that happened but cannot be sent as it is.

    Its identity may be the very values that were refused, so each is stored as a
    rendering the database can hold (escaped and cut, keys redacted), and an event
    time that cannot be one is replaced by the time of recording. An event id is
    stored only as it is: a rendering of a refused one could equal another event's id
    (two ids that differ past the cut, an escaped NUL and a real backslash), and the
    unique constraint would then drop this row without a word. A refused id is
    replaced by *fallback_event_id*, unique to the conversion, and shown in the error.
    """
    if (
        isinstance(event_id, str)
        and _checked(_event_id_problem, event_id) is None
        # Never stored with a key in it; redacted, it would be some other id.
        and redact(event_id, limit=sys.maxsize) == event_id
    ):
        stored_id = event_id
    else:
        stored_id = _rendered(fallback_event_id, EVENT_ID_MAX_LENGTH)
        if isinstance(event_id, str):
            shown = redact(event_id, limit=EVENT_ID_MAX_LENGTH + 1)
            error += (
                f' Recorded under {stored_id}, not the unusable event id "{shown}".'
            )
    when = (
        event_time.astimezone(UTC)
        if isinstance(event_time, datetime)
        and _checked(_event_time_problem, event_time) is None
        else timezone.now()
    )
    return ConversionEvent(
        pixel_id=REDACTED
        if isinstance(pixel_id, str) and starts_like_api_key(pixel_id)
        else _rendered(pixel_id, PIXEL_ID_MAX_LENGTH),
        event_type=_rendered(event_type, EVENT_TYPE_MAX_LENGTH),
        event_id=stored_id,
        event_time=when,
        expires_at=when + ACCEPTANCE_WINDOW,
        status=_Status.FAILED,
        last_error=redact(error),
        last_error_kind=kind,
        source_label=_rendered(source_label, SOURCE_LABEL_MAX_LENGTH),
    )


def _rendered(value: object, limit: int) -> str:
    """*value* as a failed row can store it: keys redacted, escaped, cut; "" if no text."""
    if not isinstance(value, str):
        return ""
    return storable(redact(value, limit=sys.maxsize), limit)


def insert_event(event: ConversionEvent, *, using: str) -> bool:
    """Insert *event* unless one with its (pixel, type, id) exists; True if written.

    An existing row that failed before it had a payload (a hook raised, the data was
    invalid) is replaced by a pending *event*: the failure held the event's identity,
    and keeping it would keep the corrected conversion out for good. An event built
    already (track()'s) is written with its payload row, in one transaction.
    """
    if not event.is_built:
        return _insert_event(event, using=using)
    payload = event.payload
    assert payload is not None  # built by track(), which gave it its payload
    with transaction.atomic(using=using, savepoint=False):
        written = _insert_event(event, using=using)
        if written:
            identity = ConversionEvent.objects.using(using).filter(
                pixel_id=event.pixel_id,
                event_type=event.event_type,
                event_id=event.event_id,
            )
            # An upsert: a replaced failed row may still hold a payload row (its
            # built_at cleared by hand), and a conflict here would abort the host's
            # transaction.
            EventPayload.objects.using(using).bulk_create(
                [
                    EventPayload(
                        event_id=identity.values_list("pk", flat=True).get(),
                        json=payload,
                    )
                ],
                update_conflicts=True,
                unique_fields=["event"],
                update_fields=["json"],
            )
    return written


def _insert_event(event: ConversionEvent, *, using: str) -> bool:
    inserted = insert_ignoring_conflict(event, using=using)
    if inserted or event.status != _Status.PENDING:
        return inserted
    replaced = (
        ConversionEvent.objects.using(using)
        .filter(
            pixel_id=event.pixel_id,
            event_type=event.event_type,
            event_id=event.event_id,
            status=_Status.FAILED,
            built_at__isnull=True,
        )
        .update(
            built_at=event.built_at,
            context=event.context,
            event_time=event.event_time,
            expires_at=event.expires_at,
            status=_Status.PENDING,
            attempts=0,
            next_attempt_at=timezone.now(),
            last_error="",
            last_error_kind="",
            source_label=event.source_label,
            updated_at=timezone.now(),
        )
    )
    return replaced == 1
