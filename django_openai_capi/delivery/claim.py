"""Claiming due events for one request, and renewing the claim's lease.

A claim is one statement in a short transaction: it picks the oldest due, built,
pending events of a pixel (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so any number of
workers can claim side by side without waiting on each other), moves them to
``sending`` with a lease, a fresh claim id and one more attempt, and returns what the
request needs, the payloads read from their own table in the same statement
(PostgreSQL) or the next one (SQLite). The HTTP request happens after the commit,
outside any transaction.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Case, F, Model, QuerySet, TextField, Value, When
from django.db.models.functions import Concat, Length
from django.db.models.lookups import LessThan
from django.utils import timezone

from django_openai_capi.conf import conf
from django_openai_capi.db import chunked, locked, updates_return_rows
from django_openai_capi.delivery.policy import EXPIRY_MARGIN
from django_openai_capi.models import (
    CLAIM_ID_ENTRY_LENGTH,
    MAX_CLAIMS_KEPT,
    ConversionEvent,
    EventPayload,
)

_Status = ConversionEvent.Status
logger = logging.getLogger("django_openai_capi.delivery")


@dataclass(frozen=True, slots=True)
class ClaimedEvent:
    pk: int
    event_type: str
    event_id: str
    payload: str
    #: Including the one this claim counted.
    attempts: int
    #: Too close to the end of its 7-day window to be sent.
    stale: bool
    source_label: str


@dataclass(frozen=True, slots=True)
class Claim:
    id: uuid.UUID
    pixel_id: str
    events: tuple[ClaimedEvent, ...]
    claimed_at: datetime
    lease_expires_at: datetime


def claim_batch(pixel_id: str, *, size: int, using: str = "default") -> Claim | None:
    """Claim up to *size* due events of *pixel_id*; ``None`` when none is due."""
    connection = connections[using]
    now = timezone.now()
    lease = now + timedelta(seconds=conf.OPENAI_CAPI_LEASE_SECONDS)
    claim_id = uuid.uuid4()
    due = due_events(pixel_id, now, using)
    with transaction.atomic(using=using):
        if updates_return_rows(connection):
            rows = _claim_returning(connection, due, size, now, lease, claim_id)
        else:
            rows = _claim_in_steps(connection, due, size, now, lease, claim_id, using)
        rows = _without_lost_payloads(rows, claim_id, using)
    if not rows:
        return None
    events = tuple(
        ClaimedEvent(
            pk=row[0],
            event_type=row[1],
            event_id=row[2],
            payload=row[3],
            attempts=row[4],
            stale=bool(row[5]),
            source_label=row[6],
        )
        for row in sorted(rows)
    )
    return Claim(claim_id, pixel_id, events, now, lease)


def _without_lost_payloads(
    rows: list[tuple[Any, ...]], claim_id: uuid.UUID, using: str
) -> list[tuple[Any, ...]]:
    """*rows* that have their payload; the others go back to the build step.

    The app writes a payload row with the built marker, but a row copied with
    ``pk = None`` or saved with ``update_fields`` naming ``built_at`` alone keeps the
    marker without the payload. Claimed as it is, it would have nothing to send and
    come back through the reaper until its attempts ran out, under a wrong reason.
    """
    lost = [row[0] for row in rows if row[3] is None]
    if not lost:
        return rows
    ConversionEvent.objects.using(using).held_by(claim_id).filter(pk__in=lost).update(
        status=_Status.PENDING,
        built_at=None,
        attempts=F("attempts") - 1,
        lease_expires_at=None,
        updated_at=timezone.now(),
    )
    logger.warning(
        "%d events were marked built but had no payload (copied or saved without "
        + "it); they go back to the build step: %s",
        len(lost),
        ", ".join(str(pk) for pk in lost),
    )
    return [row for row in rows if row[3] is not None]


def due_events(pixel_id: str, now: datetime, using: str) -> QuerySet[ConversionEvent]:
    """The events a claim may take: due, built and pending, oldest due first."""
    # The partial index openai_capi_event_due serves exactly this filter and order.
    return (
        ConversionEvent.objects.using(using)
        .due(pixel_id, now)
        .order_by("next_attempt_at", "id")
    )


_RETURNED = (
    "id",
    "event_type",
    "event_id",
    "stored_payload__json",
    "attempts",
    "expires_at",
    "source_label",
)


def _claim_returning(
    connection: BaseDatabaseWrapper,
    due: QuerySet[ConversionEvent],
    size: int,
    now: datetime,
    lease: datetime,
    claim_id: uuid.UUID,
) -> list[tuple[Any, ...]]:
    picked = locked(due.values("id")[:size], connection)
    inner_sql, inner_params = picked.query.get_compiler(connection=connection).as_sql()
    column = _columns(connection)
    table = connection.ops.quote_name(ConversionEvent._meta.db_table)
    # Only quoted identifiers and the ORM-compiled subquery are interpolated; every
    # value is a parameter.
    update = (
        f"UPDATE {table} SET {column['status']} = %s, "  # noqa: S608
        f"{column['attempts']} = {column['attempts']} + 1, "
        f"{column['lease_expires_at']} = %s, {column['claim_id']} = %s, "
        f"{column['updated_at']} = %s, "
        f"{column['claim_ids']} = CASE WHEN LENGTH({column['claim_ids']}) < %s "
        f"THEN {column['claim_ids']} || %s ELSE {column['claim_ids']} END "
        f"WHERE {column['id']} {_in_subquery(connection, inner_sql)} "
        f"AND {column['status']} = %s "
        f"RETURNING {column['id']}, {column['event_type']}, {column['event_id']}, "
        f"{column['attempts']}, "
        f"CASE WHEN {column['expires_at']} <= %s THEN 1 ELSE 0 END AS stale, "
        f"{column['source_label']}"
    )
    params = [
        _Status.SENDING.value,
        _prep("lease_expires_at", lease, connection),
        _prep("claim_id", claim_id, connection),
        _prep("updated_at", now, connection),
        *_claim_id_entry(claim_id),
        *inner_params,
        _Status.PENDING.value,
        _prep("expires_at", now + EXPIRY_MARGIN, connection),
    ]
    # One statement on PostgreSQL, the payloads read where the claimed rows are known.
    # SQLite has no UPDATE in a WITH: there they are read next, in the same
    # transaction, in one SELECT through the claim's index.
    joined = connection.vendor == "postgresql"
    sql = with_payloads(update, connection) if joined else update
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = list(cursor.fetchall())
    return rows if joined else _payloads_added(rows, claim_id, connection)


def with_payloads(claimed: str, connection: BaseDatabaseWrapper) -> str:
    """*claimed*, a statement returning the claimed rows, with each row's payload.

    A payload row is written with the built marker, in one transaction, so a claimed
    row without one (``None`` here) is a row the app did not write that way.
    """
    column = _columns(connection)
    stored = _columns(connection, EventPayload)
    payloads = connection.ops.quote_name(EventPayload._meta.db_table)
    return (
        f"WITH claimed AS ({claimed}) "  # noqa: S608
        f"SELECT claimed.{column['id']}, claimed.{column['event_type']}, "
        f"claimed.{column['event_id']}, {payloads}.{stored['json']}, "
        f"claimed.{column['attempts']}, claimed.stale, "
        f"claimed.{column['source_label']} FROM claimed LEFT JOIN {payloads} "
        f"ON {payloads}.{stored['event']} = claimed.{column['id']}"
    )


def _payloads_added(
    rows: list[tuple[Any, ...]], claim_id: uuid.UUID, connection: BaseDatabaseWrapper
) -> list[tuple[Any, ...]]:
    """The claimed *rows* with their payloads, as :func:`with_payloads` gives them."""
    if not rows:
        return []
    json = dict(
        EventPayload.objects.using(connection.alias)
        .filter(event__in=ConversionEvent.objects.held_by(claim_id))
        .values_list("pk", "json")
    )
    return [(*row[:3], json.get(row[0]), *row[3:]) for row in rows]


def _claim_in_steps(
    connection: BaseDatabaseWrapper,
    due: QuerySet[ConversionEvent],
    size: int,
    now: datetime,
    lease: datetime,
    claim_id: uuid.UUID,
    using: str,
) -> list[tuple[Any, ...]]:
    """Select, then compare-and-set: for databases without UPDATE ... RETURNING."""
    ids = list(locked(due, connection).values_list("id", flat=True)[:size])
    stale_after = now + EXPIRY_MARGIN
    rows: list[tuple[Any, ...]] = []
    for chunk in chunked(ids, using):
        # status=PENDING again: without row locks, another worker may have won a row.
        ConversionEvent.objects.using(using).filter(
            id__in=chunk, status=_Status.PENDING
        ).update(
            status=_Status.SENDING,
            attempts=F("attempts") + 1,
            lease_expires_at=lease,
            claim_id=claim_id,
            updated_at=now,
            claim_ids=_appended_claim_id(claim_id),
        )
        rows.extend(
            (*row[:5], row[5] <= stale_after, row[6])
            for row in ConversionEvent.objects.using(using)
            .held_by(claim_id)
            .filter(id__in=chunk)
            .values_list(*_RETURNED)
        )
    return rows


def _claim_id_entry(claim_id: uuid.UUID) -> tuple[int, str]:
    """The limit below which ``claim_ids`` still grows, and the entry it grows by."""
    return MAX_CLAIMS_KEPT * CLAIM_ID_ENTRY_LENGTH, f"{claim_id.hex} "


def _appended_claim_id(claim_id: uuid.UUID) -> Case:
    limit, entry = _claim_id_entry(claim_id)
    return Case(
        When(
            LessThan(Length("claim_ids"), limit),
            then=Concat(F("claim_ids"), Value(entry), output_field=TextField()),
        ),
        default=F("claim_ids"),
        output_field=TextField(),
    )


def claim_ids_of(event: ConversionEvent) -> list[uuid.UUID]:
    """Every claim that carried *event*, oldest first, the current one included."""
    claims = [uuid.UUID(entry) for entry in event.claim_ids.split()]
    if event.claim_id is not None and event.claim_id not in claims:
        claims.append(event.claim_id)
    return claims


def _in_subquery(connection: BaseDatabaseWrapper, inner_sql: str) -> str:
    # PostgreSQL may plan "id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)" as a semi
    # join that runs the subquery once per outer row, each run skipping the rows the
    # previous ones locked: a claim of 1 then takes several. ARRAY(...) runs it once.
    if connection.vendor == "postgresql":
        return f"= ANY(ARRAY({inner_sql}))"
    return f"IN ({inner_sql})"


def _columns(
    connection: BaseDatabaseWrapper, model: type[Model] = ConversionEvent
) -> dict[str, str]:
    return {
        field.name: connection.ops.quote_name(field.column)
        for field in model._meta.concrete_fields
        if field.column is not None
    }


def _prep(name: str, value: object, connection: BaseDatabaseWrapper) -> object:
    return ConversionEvent._meta.get_field(name).get_db_prep_value(value, connection)  # type: ignore[union-attr]


def renew_lease(claim: Claim, pks: Iterable[int], *, using: str = "default") -> bool:
    """Extend the lease of the claim's events still sending; False if they are lost."""
    lease = timezone.now() + timedelta(seconds=conf.OPENAI_CAPI_LEASE_SECONDS)
    renewed = 0
    for chunk in chunked(list(pks), using):
        renewed += (
            ConversionEvent.objects.using(using)
            .held_by(claim.id)
            .filter(pk__in=chunk)
            .update(lease_expires_at=lease)
        )
    return renewed > 0
