"""The outbox: one ``ConversionEvent`` per conversion, one ``DeliveryBatch`` per request.

A ``ConversionEvent`` row is written in the same transaction as the host's own save,
so it exists exactly when the order (or sign-up, or subscription) does. Delivery moves
it through ``ConversionEvent.Status``; every HTTP request that carried events leaves one
``DeliveryBatch`` row, which keeps the per-attempt record at a thousandth of the size a
per-event log would have.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from django.db import models, router, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from django_openai_capi.api import spec
from django_openai_capi.api.identifiers import (
    EVENT_ID_MAX_LENGTH,
    EVENT_TYPE_MAX_LENGTH,
    PIXEL_ID_MAX_LENGTH,
    REQUEST_ID_MAX_LENGTH,
    SOURCE_LABEL_MAX_LENGTH,
)

#: How long after its ``timestamp_ms`` the API still accepts an event.
ACCEPTANCE_WINDOW = timedelta(milliseconds=spec.MAX_EVENT_AGE_MS)

#: Claims recorded in ConversionEvent.claim_ids ("<32 hex digits> " each).
MAX_CLAIMS_KEPT = 100
CLAIM_ID_ENTRY_LENGTH = 33


class _Unset(Enum):
    """No payload was given to this instance: ``event.payload`` reads the stored one."""

    UNSET = "unset"


class ErrorKind(models.TextChoices):
    """Why an event's last attempt (or its build) did not succeed.

    Kept apart from the status: "failed" says the event will not be sent, the kind says
    whose problem that is (the host's data, the API, the credentials, the network).
    """

    BUILD = "build", _("build: a conversion hook raised")
    INVALID = "invalid", _("invalid: the event breaks the API's rules")
    SOURCE_MISSING = "source_missing", _("source missing: the saved object is gone")
    REJECTED = "rejected", _("rejected by the API")
    AUTH = "auth", _("auth: key or pixel refused")
    RATE_LIMITED = "rate_limited", _("rate limited (429)")
    SERVER = "server", _("server error (5xx)")
    NETWORK = "network", _("network: no response")
    EXPIRED = "expired", _("expired: older than the API accepts")
    UNEXPECTED = "unexpected", _("unexpected answer: check the endpoint")
    #: A 400-like refusal of any request, even of one event, naming no event: a lost
    #: ``pid`` (a proxy stripping the query string), a setting sent with every request.
    REQUEST = "request", _("request refused, not its events: check the endpoint")

    @classmethod
    def words(cls, value: str) -> str:
        """The words for a stored kind; one this version has none for, as stored.

        A row kept across a downgrade may hold a kind this version does not define: the
        status command, the health check and verify show it rather than crash.
        """
        return str(cls(value).label) if value in cls.values else value


class ConversionEventQuerySet(models.QuerySet["ConversionEvent"]):
    """The outbox's words for its rows, each defined once.

    Delivery, validation, the build step, the commands and the admin all select through
    these, so that "due" means the same rows wherever it is asked.
    """

    def pending(self) -> ConversionEventQuerySet:
        return self.filter(status=ConversionEvent.Status.PENDING)

    def built(self) -> ConversionEventQuerySet:
        """Events whose payload exists: only these can be sent."""
        return self.filter(built_at__isnull=False)

    def unbuilt(self) -> ConversionEventQuerySet:
        """Recorded model conversions still waiting for the build step."""
        return self.pending().filter(built_at__isnull=True)

    def due(
        self, pixel_id: str | None = None, now: datetime | None = None
    ) -> ConversionEventQuerySet:
        """Pending, built events whose next attempt has come (of *pixel_id*, if given).

        What a claim may take, unordered; the claim orders by ``(next_attempt_at,
        id)``, which the partial index ``openai_capi_event_due`` serves.
        """
        due = (
            self.pending()
            .built()
            .filter(next_attempt_at__lte=timezone.now() if now is None else now)
        )
        return due if pixel_id is None else due.filter(pixel_id=pixel_id)

    def of_pixels(self, pixel_ids: Iterable[str] | None) -> ConversionEventQuerySet:
        """The events of *pixel_ids*; all of them for ``None`` (no ``--pixel`` given)."""
        return self if pixel_ids is None else self.filter(pixel_id__in=pixel_ids)

    def due_pixels(self, now: datetime | None = None) -> list[str]:
        """The pixels (of these events) with due events, in order.

        A skip scan, two short index probes per pixel: the next pixel with pending
        events (the due index is ordered by pixel), then whether it has one due and
        built. A ``DISTINCT`` over the due rows would read every pending row instead,
        once per pass: 1.3 s on PostgreSQL with 1,000,000 pending, against 15 ms
        (BENCHMARKS.md).
        """
        now = timezone.now() if now is None else now
        pending = self.pending()
        pixels: list[str] = []
        last: str | None = None
        while True:
            after = pending if last is None else pending.filter(pixel_id__gt=last)
            last = after.order_by("pixel_id").values_list("pixel_id", flat=True).first()
            if last is None:
                return pixels
            # Ordered as the claim is (exists() would drop the order): the planner
            # then walks the due index, where an unordered probe may scan the table
            # from the start, through every sent row, before it finds a pending one.
            due = self.due(last, now).order_by("next_attempt_at", "id")
            if due.values_list("id", flat=True).first() is not None:
                pixels.append(last)

    def overdue(self, now: datetime) -> ConversionEventQuerySet:
        """Pending events whose 7-day window has closed."""
        return self.pending().filter(expires_at__lte=now)

    def held_by(self, claim_id: uuid.UUID) -> ConversionEventQuerySet:
        """The events a claim still holds: sending under its id.

        Every outcome writes through this, so a worker that lost its lease (its events
        taken back and claimed again under a new id) touches nothing.
        """
        return self.filter(claim_id=claim_id, status=ConversionEvent.Status.SENDING)

    def bulk_create(
        self, objs: Iterable[ConversionEvent], *args: Any, **kwargs: Any
    ) -> list[ConversionEvent]:
        """Insert the events and the payloads given to them, in one transaction."""
        objs = list(objs)
        given = any(isinstance(event._unsaved_payload, str) for event in objs)
        if given and kwargs.get("ignore_conflicts"):
            raise ValueError(
                "payload: bulk_create(ignore_conflicts=True) does not return the ids "
                + "of the events, so their payloads cannot be stored with them; "
                + "save those events one by one"
            )
        # The write database, as Django's own bulk_create takes (not the read one).
        self._for_write = True
        with transaction.atomic(using=self.db, savepoint=False):
            events = super().bulk_create(objs, *args, **kwargs)
            EventPayload.objects.using(self.db).bulk_create(
                EventPayload(event=event, json=json)
                for event in events
                if isinstance(json := event._unsaved_payload, str)
            )
        for event in events:
            event._unsaved_payload = _Unset.UNSET
        return events

    def update(self, **kwargs: Any) -> int:
        if "payload" in kwargs:
            raise TypeError(
                "payload: an event's payload is stored in its own table; set "
                + "event.payload and save() the event, or update EventPayload rows"
            )
        return super().update(**kwargs)

    def lease_expired(self, now: datetime) -> ConversionEventQuerySet:
        """Sending events whose worker is presumed dead."""
        return self.filter(
            status=ConversionEvent.Status.SENDING, lease_expires_at__lt=now
        )


class ConversionEvent(models.Model):
    """One conversion to deliver: its identity, the exact JSON to send, and its state."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        SENDING = "sending", _("sending")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")
        EXPIRED = "expired", _("expired")
        CANCELLED = "cancelled", _("cancelled")

    id = models.BigAutoField(primary_key=True)
    pixel_id = models.CharField(_("pixel ID"), max_length=PIXEL_ID_MAX_LENGTH)
    event_type = models.CharField(
        _("event type"),
        max_length=EVENT_TYPE_MAX_LENGTH,
        choices=[(name, name) for name in spec.EVENT_DATA_TYPES],
    )
    event_id = models.CharField(_("event ID"), max_length=EVENT_ID_MAX_LENGTH)
    # When the payload was stored (EventPayload, written in the same transaction);
    # NULL means "not built yet": a model conversion is built from the committed rows
    # after the host's transaction, and a row that is not built is never sent. The
    # payload itself lives in a table of its own, so that a claim and an outcome,
    # which rewrite this row, rewrite about 150 bytes and not 1.5 KB (BENCHMARKS.md).
    built_at = models.DateTimeField(_("built"), null=True, blank=True)
    # The visitor's context (oppref, obref, IP, user agent, page URL) as canonical JSON,
    # captured from the request that saved the object: the build runs later, in the
    # worker, where that request is gone. Only until the build has run (then NULL
    # again): what of it the event needed is in the payload, and an IP address and a
    # user agent are personal data that nothing else here needs to keep.
    context = models.TextField(_("request context"), null=True, blank=True)  # noqa: DJ001 - NULL is "none captured"
    # Fixed when the row is recorded, so that a rebuild, a retry and a resend all carry
    # the same timestamp_ms.
    event_time = models.DateTimeField(_("event time"))
    # event_time + 7 days: past it the API refuses the event (and with it, the whole
    # batch), so the event is expired instead of being retried.
    expires_at = models.DateTimeField(_("accepted until"))
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING
    )
    # Counted when a worker claims the event, not when a response comes back, so that
    # an event that kills its worker still uses up its attempts.
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    # Never NULL: "due" is one indexed comparison, with no "IS NULL OR" beside it.
    next_attempt_at = models.DateTimeField(_("next attempt"), default=timezone.now)
    # Set while SENDING: past it, the worker that claimed the event is presumed dead and
    # the event goes back to PENDING.
    lease_expires_at = models.DateTimeField(_("lease expires"), null=True, blank=True)
    # The claim that holds (or last held) the event: the id a worker gave the events it
    # took for one request. Every outcome is written only where the claim id still
    # matches, so a worker that lost its lease cannot overwrite what the next one
    # recorded. The requests of a claim are the DeliveryBatch rows of that claim_id.
    claim_id = models.UUIDField(_("claim ID"), null=True, blank=True)
    # Every claim that carried the event, oldest first: the hex of each claim id and a
    # space, appended by the claim's own UPDATE (no statement of its own). claim_id
    # keeps only the latest; this finds every request the event went out in (the
    # admin's event page). Appending stops at MAX_CLAIMS_KEPT, so a row cannot grow
    # without end through a long outage of held, re-claimed batches.
    claim_ids = models.TextField(_("claims"), blank=True, default="", editable=False)
    last_http_status = models.PositiveSmallIntegerField(
        _("last HTTP status"), null=True, blank=True
    )
    last_error = models.TextField(_("last error"), blank=True, default="")
    last_error_kind = models.CharField(
        _("error kind"),
        max_length=16,
        choices=ErrorKind.choices,
        blank=True,
        default="",
    )
    # "shop.Order:42" for a model conversion: what the admin searches and shows, and how
    # the worker finds the object to build the event from. Free text for track().
    source_label = models.CharField(
        _("source"), max_length=SOURCE_LABEL_MAX_LENGTH, blank=True, default=""
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)

    objects = ConversionEventQuerySet.as_manager()

    class Meta:
        verbose_name = _("conversion event")
        verbose_name_plural = _("conversion events")
        constraints = [
            # The API's own deduplication key: a second save of the same order, or a
            # signal fired twice, records nothing new.
            # Led by event_id, so that it also serves the admin's exact search by
            # event id: a separate index there would be one more entry written by
            # every insert, claim and outcome (BENCHMARKS.md, "Drain").
            models.UniqueConstraint(
                fields=["event_id", "pixel_id", "event_type"],
                name="openai_capi_event_identity",
            ),
        ]
        indexes = [
            # The claim query: due pending events of one pixel, oldest first. Partial,
            # so that millions of sent rows never enter it. "Built" is read from the
            # row the claim locks anyway (built_at, no join), and is not in the
            # predicate: due_pixels() walks this index for any pending event.
            models.Index(
                fields=["pixel_id", "next_attempt_at", "id"],
                condition=Q(status="pending"),
                name="openai_capi_event_due",
            ),
            # Claimed events: a claim's outcome finds its rows by claim id, in one
            # probe and two parameters whatever the batch size; the reaper reads
            # the leases from the same entries (only events in flight are in it).
            models.Index(
                fields=["claim_id", "lease_expires_at"],
                condition=Q(status="sending"),
                name="openai_capi_event_claimed",
            ),
            # The build step: recorded model conversions whose payload is still to build.
            models.Index(
                fields=["id"],
                condition=Q(status="pending", built_at__isnull=True),
                name="openai_capi_event_unbuilt",
            ),
            # The expiry sweep: pending events past their window, whatever their pixel
            # (those of a pixel with no key are never claimed).
            models.Index(
                fields=["expires_at"],
                condition=Q(status="pending"),
                name="openai_capi_event_overdue",
            ),
            # Cleanup of old rows, which only ever deletes finished ones. Partial, so
            # that neither a tracked save nor a claim writes an entry in it.
            models.Index(
                fields=["created_at"],
                condition=Q(status__in=["sent", "failed", "expired", "cancelled"]),
                name="openai_capi_event_created",
            ),
            # The admin. Each serves a filter together with the list's order (-id), so
            # a page of 100 reads 100 index entries, and a filter that matches nothing
            # reads none. Partial over what a tracked save never inserts (it inserts
            # pending rows with no error), so that save pays nothing for them.
            models.Index(
                fields=["status", "id"],
                condition=Q(status__in=["sent", "failed", "expired", "cancelled"]),
                name="openai_capi_event_finished",
            ),
            models.Index(
                fields=["last_error_kind", "id"],
                condition=~Q(last_error_kind=""),
                name="openai_capi_event_error",
            ),
            # The status page's failed events per hour: those that gave up (failed or
            # expired), by when they did. Partial, so that neither a tracked save
            # (pending) nor a claim (sending) nor a send (sent) writes an entry; only
            # the rare row that gives up, or is resent after it did. The status page
            # repeats the condition word for word, or SQLite would not use it.
            models.Index(
                fields=["updated_at"],
                condition=Q(status__in=["failed", "expired"]),
                name="openai_capi_event_gave_up",
            ),
            # The admin's exact search by source (by event id: the identity above),
            # and the backfill's read-back.
            models.Index(fields=["source_label"], name="openai_capi_event_source"),
        ]
        permissions = [
            ("resend_conversionevent", "Can resend failed or cancelled events"),
            ("cancel_conversionevent", "Can cancel pending events"),
            ("validate_conversionevent", "Can validate events with the API"),
        ]

    #: A payload given to this instance and not saved yet, or _Unset.UNSET.
    _unsaved_payload: str | None | _Unset = _Unset.UNSET

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} ({self.status})"

    def save(
        self,
        *,
        force_insert: bool | tuple[models.base.ModelBase, ...] = False,
        force_update: bool = False,
        using: str | None = None,
        update_fields: Iterable[str] | None = None,
    ) -> None:
        """Save the event and, if one was given, its payload, in one transaction.

        ``update_fields`` may name ``"payload"`` (its marker, ``built_at``, is saved
        with it); when it does not, a payload given since the last save is left unsaved.
        """
        payload = self._unsaved_payload
        if update_fields is not None:
            update_fields = set(update_fields)
            if "payload" in update_fields:
                update_fields = (update_fields - {"payload"}) | {"built_at"}
            else:
                payload = _Unset.UNSET
        if payload is _Unset.UNSET:
            super().save(
                force_insert=force_insert,
                force_update=force_update,
                using=using,
                update_fields=update_fields,
            )
            return
        using = using or router.db_for_write(type(self), instance=self)
        adding = self._state.adding
        with transaction.atomic(using=using, savepoint=False):
            super().save(
                force_insert=force_insert,
                force_update=force_update,
                using=using,
                update_fields=update_fields,
            )
            if payload is not None:
                # A new event's payload is new too; an existing one's is updated,
                # or inserted if it had none.
                stored = EventPayload(event=self, json=payload)
                stored.save(using=using, force_insert=adding)
            elif not adding:
                EventPayload.objects.using(using).filter(pk=self.pk).delete()
                EventPayload.event.field.remote_field.set_cached_value(self, None)
        self._unsaved_payload = _Unset.UNSET

    def refresh_from_db(
        self,
        using: str | None = None,
        fields: Iterable[str] | None = None,
        from_queryset: models.QuerySet[ConversionEvent] | None = None,
    ) -> None:
        """Reload the event; a full reload drops a payload given and not saved.

        As for a field: the stored payload is read again, and a later save() does
        not write the one given before the reload.
        """
        super().refresh_from_db(using=using, fields=fields, from_queryset=from_queryset)
        if fields is None:
            self._unsaved_payload = _Unset.UNSET

    @property
    def is_built(self) -> bool:
        """Whether the payload exists; an event without one is never sent."""
        return self.built_at is not None

    @property
    def payload(self) -> str | None:
        """The JSON sent for this event, exactly as stored; ``None`` until it is built.

        Stored in :class:`EventPayload`, a table of its own, so reading it costs one
        query per event, the first time. Code that reads the payloads of many events
        selects them with the events: ``.select_related("stored_payload")``.
        """
        if self._unsaved_payload is not _Unset.UNSET:
            return self._unsaved_payload
        try:
            return self.stored_payload.json
        except EventPayload.DoesNotExist:
            return None

    @payload.setter
    def payload(self, json: str | None) -> None:
        # Written by save() (or the manager's bulk_create()), with the event, in the
        # same transaction; the marker is the event's own, so it is set here.
        self._unsaved_payload = json
        if json is None:
            self.built_at = None
        elif self.built_at is None:
            self.built_at = timezone.now()


class EventPayload(models.Model):
    """The JSON an event sends, in a table of its own, written once when it is built.

    A claim and an outcome rewrite their events' rows (PostgreSQL writes a new version
    of the whole row, SQLite rewrites its record): kept here, the 1.3 KB of a rich
    order is written once, and the claim only reads it. Read it as ``event.payload``.
    """

    # The primary key is the event's: one payload per event, found by the event's id.
    event = models.OneToOneField(
        ConversionEvent,
        primary_key=True,
        on_delete=models.CASCADE,
        # Not "payload": that is the event's property, which reads this.
        related_name="stored_payload",
        verbose_name=_("event"),
    )
    # Text, not JSONField: this is the canonical JSON exactly as it will be sent, and a
    # batch body is spliced together from it without parsing. jsonb would reorder keys
    # and force a decode and re-encode of every event on every send.
    json = models.TextField(_("JSON"))

    class Meta:
        verbose_name = _("event payload")
        verbose_name_plural = _("event payloads")

    def __str__(self) -> str:
        return f"payload of event {self.pk}"


def carried_pks(pks: Iterable[int]) -> str:
    """``DeliveryBatch.carried`` of a request that carried the events *pks*."""
    return "".join(f" {pk}" for pk in pks) + " "


class DeliveryBatchQuerySet(models.QuerySet["DeliveryBatch"]):
    def carrying(
        self, event_pk: int, claims: Sequence[uuid.UUID]
    ) -> DeliveryBatchQuerySet:
        """The requests of *claims* that carried the event *event_pk*."""
        return self.filter(
            Q(carried="") | Q(carried__contains=f" {event_pk} "), claim_id__in=claims
        )


class DeliveryBatch(models.Model):
    """One HTTP request to the Conversions API, and what came of it."""

    class Outcome(models.TextChoices):
        ACCEPTED = "accepted", _("accepted")
        REJECTED = "rejected", _("rejected")
        # Written over REJECTED once delivery finds that the API refuses the request
        # whatever it carries: its status alone would file it as a refused event.
        REQUEST_REFUSED = "request_refused", _("request refused")
        AUTH_ERROR = "auth_error", _("auth error")
        RATE_LIMITED = "rate_limited", _("rate limited")
        RETRY = "retry", _("retry later")
        NETWORK_ERROR = "network_error", _("network error")
        UNEXPECTED = "unexpected", _("unexpected answer")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The claim this request belongs to: ConversionEvent.claim_id of the events it
    # carried. A claim normally makes one request; a rejected batch makes more while
    # its bad events are isolated, all with the same claim id.
    claim_id = models.UUIDField(_("claim ID"), db_index=True)
    pixel_id = models.CharField(_("pixel ID"), max_length=PIXEL_ID_MAX_LENGTH)
    size = models.PositiveIntegerField(_("events"))
    # Which events this request carried, when it was not every event of its claim: the
    # requests that isolate a rejected batch, or the first request of a claim whose
    # stale events were expired unsent. Their pks, each between spaces (" 12 40 "), so
    # that one LIKE finds the requests of an event (its page in the admin). Empty: the
    # whole claim, as nearly every request is, so that the common path writes nothing.
    carried = models.TextField(
        _("events carried"), blank=True, default="", editable=False
    )
    validate_only = models.BooleanField(_("validate only"), default=False)
    # Written once, when the request has its answer: a worker that dies mid-request
    # leaves no row, and its events come back through the lease reaper.
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome.choices)
    http_status = models.PositiveSmallIntegerField(
        _("HTTP status"), null=True, blank=True
    )
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), null=True, blank=True)
    # The response's x-request-id: what OpenAI support asks for.
    request_id = models.CharField(
        _("request ID"), max_length=REQUEST_ID_MAX_LENGTH, blank=True, default=""
    )
    # The start of the error body or exception, with anything key-like redacted.
    error = models.TextField(_("error"), blank=True, default="")
    worker = models.CharField(_("worker"), max_length=128, blank=True, default="")
    created_at = models.DateTimeField(_("started"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    objects = DeliveryBatchQuerySet.as_manager()

    class Meta:
        verbose_name = _("delivery batch")
        verbose_name_plural = _("delivery batches")
        indexes = [
            models.Index(fields=["created_at"], name="openai_capi_batch_created"),
            # The status page's last failed request of each outcome, one probe each.
            # Partial: an accepted request, nearly every one, writes no entry.
            models.Index(
                fields=["outcome", "created_at"],
                condition=~Q(outcome="accepted"),
                name="openai_capi_batch_failed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.size} events to {self.pixel_id} ({self.outcome})"


class PixelPause(models.Model):
    """A pixel whose requests are held back, and why.

    A refused key, a rate limit or an outage is the pixel's problem, not the events':
    sending the rest of a backlog into it would only spend their attempts. Every
    worker reads this row before claiming, so the pause holds across processes.
    """

    pixel_id = models.CharField(
        _("pixel ID"), max_length=PIXEL_ID_MAX_LENGTH, primary_key=True
    )
    paused_until = models.DateTimeField(_("paused until"))
    # The first failure of the streak: how long the pixel has been held back.
    since = models.DateTimeField(_("paused since"), default=timezone.now)
    # Consecutive failed requests; each one doubles the pause. Reset by a success.
    failures = models.PositiveIntegerField(_("consecutive failures"), default=0)
    reason = models.CharField(
        _("reason"), max_length=16, choices=ErrorKind.choices, blank=True, default=""
    )
    http_status = models.PositiveSmallIntegerField(
        _("HTTP status"), null=True, blank=True
    )
    error = models.TextField(_("error"), blank=True, default="")
    # Whether a person must hear of it (pauses.py decides): its cause will not pass by
    # itself, or it has lasted several failed requests. A passing 5xx does not count.
    needs_attention = models.BooleanField(_("needs attention"), default=False)
    # What to do about it, as delivery advised when it paused (advice.what_to_do).
    advice = models.TextField(_("what to do"), blank=True, default="")
    request_id = models.CharField(
        _("request ID"), max_length=REQUEST_ID_MAX_LENGTH, blank=True, default=""
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("pixel pause")
        verbose_name_plural = _("pixel pauses")

    def __str__(self) -> str:
        return f"{self.pixel_id} paused until {self.paused_until:%Y-%m-%d %H:%M:%S}"


class PixelAlert(models.Model):
    """One condition a pixel can be in that a person must hear of, and whether it holds.

    A row per pixel and condition (and error kind, for failures), written when the
    condition starts and when it ends: the people are told on those changes only, once
    however many workers see it, never once per event (``alerts.py``).
    """

    class Condition(models.TextChoices):
        PAUSED = "paused", _("delivery paused")
        STALE = "stale", _("due events waiting")
        FAILED = "failed", _("events failed")

    pixel_id = models.CharField(_("pixel ID"), max_length=PIXEL_ID_MAX_LENGTH)
    condition = models.CharField(
        _("condition"), max_length=16, choices=Condition.choices
    )
    # The ErrorKind of a failure; empty for the other conditions.
    kind = models.CharField(
        _("error kind"),
        max_length=16,
        choices=ErrorKind.choices,
        blank=True,
        default="",
    )
    active = models.BooleanField(_("active"), default=True)
    raised_at = models.DateTimeField(_("raised"), default=timezone.now)
    # The last time the condition was seen holding: a failure alert lapses a day after
    # its last failure, so that the next one is news again.
    seen_at = models.DateTimeField(_("last seen"), default=timezone.now)
    cleared_at = models.DateTimeField(_("cleared"), null=True, blank=True)
    # What the people were told, redacted.
    message = models.TextField(_("message"), blank=True, default="")
    request_id = models.CharField(
        _("request ID"), max_length=REQUEST_ID_MAX_LENGTH, blank=True, default=""
    )

    class Meta:
        verbose_name = _("pixel alert")
        verbose_name_plural = _("pixel alerts")
        constraints = [
            models.UniqueConstraint(
                fields=["pixel_id", "condition", "kind"], name="openai_capi_alert_key"
            )
        ]

    def __str__(self) -> str:
        state = "active" if self.active else "cleared"
        return f"{self.pixel_id}: {self.condition} {self.kind} ({state})".replace(
            "  ", " "
        )


class DeliveryStatus(ConversionEvent):
    """The admin's status page, as an entry of the app's list on the admin index.

    A proxy with no permissions of its own: the page is open to whoever may view
    conversion events. Registering it is what links the page from an admin site.
    """

    class Meta:
        proxy = True
        default_permissions = ()
        verbose_name = _("delivery status")
        verbose_name_plural = _("delivery status")
