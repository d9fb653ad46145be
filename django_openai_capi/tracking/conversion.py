"""``ModelConversion``: how a saved model instance becomes a Conversions API event.

A subclass names the event type and overrides the hooks it needs; each hook has a
default that works, so the smallest conversion is one line (``event_type = ...``).
The hooks that decide whether and under which identity an event exists run inside the
host's save; the ones that describe the event (``get_data``, ``get_user`` ...) run after
the commit, on the committed rows, when the event is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from django.db import models
from django.utils import timezone

from django_openai_capi.api.events import JSONObject
from django_openai_capi.api.values import plain
from django_openai_capi.conf import conf
from django_openai_capi.exceptions import CapiConfigurationError, EventValidationError
from django_openai_capi.tracking.context import RequestContext
from django_openai_capi.tracking.enrich import build_with_context

if TYPE_CHECKING:
    from django.db.models.query import QuerySet

M = TypeVar("M", bound=models.Model)


class HookError(Exception):
    """A hook of a conversion raised; carries which one, for the recorded reason."""

    def __init__(self, hook: str, error: Exception) -> None:
        super().__init__(hook)
        self.hook = hook
        self.error = error


class ModelConversion(Generic[M]):
    """Describe the conversion a model's saves stand for.

    Subclass it, set :attr:`event_type`, override the hooks you need, and register the
    class for the model with :func:`~django_openai_capi.register` in the app's
    ``conversions.py``.
    """

    #: One of the API's 13 event types: ``EventType.ORDER_CREATED`` or
    #: ``"order_created"``.
    event_type: ClassVar[str]
    #: Required with ``event_type = "custom"``, refused otherwise.
    custom_event_name: ClassVar[str | None] = None
    #: The pixel to send to; ``None`` means ``OPENAI_CAPI_PIXEL_ID``.
    pixel_id: ClassVar[str | None] = None
    #: The model field holding when the conversion happened (``"created_at"``): what
    #: the backfill command selects objects by. ``None``: the model cannot be backfilled
    #: unless :meth:`get_backfill_queryset` is overridden.
    date_field: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # An EventType is kept as its plain string, as the outbox stores it and errors
        # name it: every later use of the class's event_type then sees a str.
        plain_event_type(cls)

    def __init__(self, model: type[M]) -> None:
        self.model = model

    def __repr__(self) -> str:
        return f"<{type(self).__qualname__} for {self.model._meta.label}>"

    # Hooks run inside the host's save, in its transaction.

    def should_track(self, obj: M, created: bool) -> bool:
        """Whether this save is the conversion. Default: the first save (``created``)."""
        return created

    def get_event_id(self, obj: M) -> str:
        """The event's ``id``, shared with the browser pixel and reused on every resend.

        Default ``"<app_label>.<model>:<pk>"``: stable, and unique per object (the
        registered model's name, also for a save through a proxy).
        """
        return f"{self.model._meta.label_lower}:{obj.pk}"

    def get_event_time(self, obj: M) -> datetime:
        """When the conversion happened (timezone-aware).

        Default: the object's :attr:`date_field` when it holds a datetime, so that a
        backfilled event carries the time of the conversion, not of the backfill;
        otherwise the time of the save.
        """
        if self.date_field is not None:
            value = getattr(obj, self.date_field, None)
            if isinstance(value, datetime):
                return value
        return timezone.now()

    def get_pixel_id(self, obj: M) -> str:
        """The pixel this event goes to. Default: :attr:`pixel_id`, else the setting."""
        return self.pixel_id or conf.default_pixel_id()

    def get_request_context(
        self, obj: M, context: RequestContext
    ) -> RequestContext | None:
        """What of the saving request's context to keep for the event. Default: all.

        Runs only for a save inside a request that passed through the middleware.
        Return ``None`` (or ``context.without({...})``) where that request is not the
        buyer's own, such as an order a member of staff enters in the admin: its IP,
        user agent and click id are the staff member's.
        """
        return context

    # Hooks run when the event is built, after the commit, on the committed object.

    def get_user(self, obj: M) -> Mapping[str, object] | None:
        """Raw identity (``email``, ``phone``, ``external_id`` ...), hashed before storing.

        Default: none. Keys are those of DESIGN §3; an unknown key is an error.
        """
        return None

    def get_data(self, obj: M) -> Mapping[str, object] | None:
        """The ``data`` object without ``type``: ``amount``, ``currency``,
        ``contents``, ``plan_id``, or custom fields. Default: none.

        An ``amount`` (the data's or a content item's) is a ``Decimal`` in major units
        (``order.total``, as a ``DecimalField`` holds it), a py-moneyed or
        django-money ``Money``, or an ``int`` already in minor units; see
        :func:`~django_openai_capi.api.build_event`.
        """
        return None

    def get_source_url(self, obj: M) -> str | None:
        """The page the conversion happened on (scheme and host at least).

        Default: none, so the URL of the request that saved the object (without its
        query string) is used when the middleware captured one.
        """
        return None

    def get_oppref(self, obj: M) -> str | None:
        """The OpenAI click identifier, unchanged.

        Default: none, so the visitor's (the landing URL's ``oppref``, or the
        ``__oppref`` cookie) is used when the middleware captured one.
        """
        return None

    def get_opt_out(self, obj: M) -> bool:
        """``True`` opts the event out of user-level personalization. Default: ``False``."""
        return False

    def get_action_source(self, obj: M) -> str | None:
        """Where the conversion happened (``"web"``, ``"offline"`` ...).

        Default ``None``, which sends ``"mobile_app"`` for the app events, ``"web"``
        when the event has a source URL (its own or the request's), and nothing
        otherwise.
        """
        return None

    # Queries.

    def get_queryset(self) -> QuerySet[M]:
        """The objects this conversion covers.

        The backfill command walks it, and events are built from objects loaded through
        it: add ``select_related``/``prefetch_related`` here for what ``get_data`` reads.
        """
        return self.model._default_manager.all()

    def get_backfill_queryset(
        self, since: datetime, until: datetime | None
    ) -> QuerySet[M]:
        """The objects the backfill command records events for.

        Default: :meth:`get_queryset` where :attr:`date_field` is at or after *since*
        and, unless *until* is ``None``, before *until*. Override it where no single
        field says when the conversion happened.
        """
        if self.date_field is None:
            raise CapiConfigurationError(
                f"{type(self).__name__} has no date_field, so the backfill cannot "
                + f"tell which {self.model._meta.label} objects fall in its dates: set "
                + "date_field to the field holding when the conversion happened "
                + '(e.g. date_field = "created_at"), or override get_backfill_queryset().'
            )
        period = {f"{self.date_field}__gte": since}
        if until is not None:
            period[f"{self.date_field}__lt"] = until
        return self.get_queryset().filter(**period)

    # Not hooks: how the app uses them.

    def build(
        self,
        obj: M,
        *,
        event_id: str,
        event_time: datetime,
        now: int | None = None,
        context: RequestContext | None = None,
    ) -> JSONObject:
        """The validated API event for *obj*, as recorded under *event_id* and *event_time*.

        *context* is the visitor's, kept from the request that saved *obj*: it fills
        what the hooks leave empty (``oppref``; ``obref``, IP and user agent in
        ``user``; the page's URL as ``source_url``), and what of it the API would
        refuse is left out. Raises :class:`HookError` when a hook raises,
        :class:`EventValidationError` when what the hooks return does not make a valid
        event. *now* (Unix milliseconds) fixes the clock of the 7-day window check.
        """
        source_url = _call(self, "get_source_url", obj)
        action_source = _call(self, "get_action_source", obj)
        return build_with_context(
            self.event_type,
            context=context or RequestContext(),
            event_id=event_id,
            event_time=event_time,
            data=_call(self, "get_data", obj),
            user=_call(self, "get_user", obj),
            custom_event_name=self.custom_event_name,
            action_source=action_source,
            source_url=source_url,
            oppref=_call(self, "get_oppref", obj),
            opt_out=_call(self, "get_opt_out", obj),
            now=now,
        )


def _call(conversion: ModelConversion[Any], hook: str, obj: object) -> Any:
    # Named by the hook, not by the function found there: a wrapped or patched hook
    # still reports as "get_data".
    try:
        return getattr(conversion, hook)(obj)
    except EventValidationError:
        raise
    except Exception as exc:
        raise HookError(hook, exc) from exc


def plain_event_type(cls: type[ModelConversion[Any]]) -> None:
    """Make *cls*'s ``event_type`` a plain ``str`` if it is an ``EventType``."""
    event_type = getattr(cls, "event_type", None)
    if isinstance(event_type, str) and type(event_type) is not str:
        cls.event_type = plain(event_type)
