"""The admin's event list and status page on a big outbox, against Django's defaults.

Seeds N events (a realistic mix: mostly sent, the newest pending, some failed, expired
and cancelled; three pixels, four types; one DeliveryBatch per 500 events), then times,
interleaved in the same run on the same table:

- ours: the event list unfiltered, filtered to failed, searched by an event id, and
  the status page;
- Django's default: a plain ``ModelAdmin`` of the same model on a separate
  ``AdminSite``, with the same columns, filters and search, and default options
  (a full count, ``SELECT DISTINCT`` for the pixel filter, ``iexact`` search).

    python bench/admin_changelist.py --quick          # CI: SQLite, a few thousand rows
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/capi_bench \\
        python bench/admin_changelist.py --rows 1000000 --explain

With ``--explain``, on PostgreSQL every query our pages run is EXPLAINed and any
sequential scan of the event table is reported; on SQLite every query of the status
page is, with the parameters it was sent with, and any full scan of the event table
is reported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
_TMP = tempfile.TemporaryDirectory()
if not os.environ.get("DATABASE_URL"):
    os.environ["DATABASE_URL"] = f"sqlite:///{_TMP.name}/bench.sqlite3"

import django  # noqa: E402

django.setup()

from django.contrib import admin  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import (  # noqa: E402
    CaptureQueriesContext,
    get_runner,
    override_settings,
    setup_test_environment,
)
from django.urls import path  # noqa: E402
from django.utils import timezone  # noqa: E402

from django_openai_capi import health  # noqa: E402
from django_openai_capi.models import (  # noqa: E402
    ACCEPTANCE_WINDOW,
    ConversionEvent,
    DeliveryBatch,
    EventPayload,
)

EVENTS = ConversionEvent._meta.db_table
PAYLOADS = EventPayload._meta.db_table
BATCHES = DeliveryBatch._meta.db_table
TYPES = [
    "order_created",
    "lead_created",
    "registration_completed",
    "subscription_created",
]
ERROR_KINDS = ["rejected", "server", "network", "invalid"]
#: Seconds of history the rows span (30 days), newest last.
SPAN = 30 * 24 * 3600
PAD = "x" * 500  # a payload of a realistic size: the list must not read it


class DefaultEventAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = [
        "id",
        "status",
        "event_type",
        "event_id",
        "source_label",
        "attempts",
        "next_attempt_at",
        "last_http_status",
        "last_error",
        "created_at",
    ]
    list_filter = ["status", "event_type", "pixel_id", "last_error_kind"]
    search_fields = ["=event_id", "=source_label"]


default_site = admin.AdminSite(name="default_admin")
default_site.register(ConversionEvent, DefaultEventAdmin)

urlpatterns = [
    path("admin/", admin.site.urls),
    path("default/", default_site.urls),
]


def seed_postgresql(rows: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {EVENTS} (pixel_id, event_type, event_id, built_at, event_time,
                expires_at, status, attempts, next_attempt_at, last_http_status,
                last_error, last_error_kind, source_label, created_at, updated_at,
                sent_at, claim_ids)
            SELECT 'pixel-' || (i %% 3),
                (ARRAY{TYPES!r})[i %% 4 + 1],
                'ev-' || i,
                t, t, t + interval '7 days', s.status,
                CASE WHEN s.status = 'pending' THEN 0 ELSE 1 END,
                t,
                CASE s.status WHEN 'failed' THEN 400 WHEN 'sent' THEN 200 END,
                CASE WHEN s.status IN ('failed', 'expired')
                    THEN 'error of event ev-' || i ELSE '' END,
                CASE s.status WHEN 'failed' THEN (ARRAY{ERROR_KINDS!r})[i %% 4 + 1]
                    WHEN 'expired' THEN 'expired' ELSE '' END,
                'shop.Order:' || i, t, t,
                CASE WHEN s.status = 'sent' THEN t END, ''
            FROM generate_series(1, %s) AS i,
                LATERAL (SELECT now() - (%s - i) * (%s::float / %s) * interval '1 second'
                    AS t) AS times,
                LATERAL (SELECT CASE
                    WHEN i > %s * 0.97 THEN 'pending'
                    WHEN i %% 100 < 3 THEN 'failed'
                    WHEN i %% 100 < 5 THEN 'expired'
                    WHEN i %% 100 < 7 THEN 'cancelled'
                    ELSE 'sent' END AS status) AS s
            """,
            [rows, rows, SPAN, rows, rows],
        )
        cursor.execute(
            f"""
            INSERT INTO {PAYLOADS} (event_id, json)
            SELECT id, '{{"id":"' || event_id || '","pad":"{PAD}"}}' FROM {EVENTS}
            """
        )
        cursor.execute(
            f"""
            INSERT INTO {BATCHES} (id, claim_id, pixel_id, size, carried, validate_only,
                outcome, http_status, duration_ms, request_id, error, worker, created_at)
            SELECT gen_random_uuid(), gen_random_uuid(), 'pixel-' || (i %% 3), 500, '',
                false,
                CASE WHEN i %% 20 = 0 THEN 'retry' ELSE 'accepted' END,
                CASE WHEN i %% 20 = 0 THEN 503 ELSE 200 END,
                100 + i %% 200, 'req_' || i, '', 'bench',
                now() - (%s - i) * (%s::float / %s) * interval '1 second'
            FROM generate_series(1, %s) AS i
            """,
            [rows // 500, SPAN, max(rows // 500, 1), rows // 500],
        )
    # What autovacuum would have done to a table this old: statistics, and the
    # visibility map that lets an index answer a count without the heap.
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {EVENTS}")
        cursor.execute(f"VACUUM ANALYZE {PAYLOADS}")
        cursor.execute(f"VACUUM ANALYZE {BATCHES}")


#: Filters only EXPLAINed, not timed: each must use an index that serves it and -id.
EXPLAINED = [
    "?status__exact=sending",  # no rows at all
    "?status__exact=pending",
    "?status__exact=cancelled",
    "?event_type__exact=order_created",
    "?pixel_id=pixel-1",
    # No row of this type or pixel: nothing to find, however far the list looks.
    "?event_type__exact=app_installed",
    "?pixel_id=pixel-none",
    "?last_error_kind__exact=network",
    "?q=shop.Order:123",
    "?status__exact=failed&last_error_kind__exact=server",
]


def status_of(i: int, rows: int) -> str:
    if i > rows * 0.97:
        return "pending"
    return (
        "failed"
        if i % 100 < 3
        else "expired"
        if i % 100 < 5
        else "cancelled"
        if i % 100 < 7
        else "sent"
    )


def seed_in_python(rows: int) -> None:
    now = timezone.now()
    chunk: list[ConversionEvent] = []
    for i in range(1, rows + 1):
        when = now - timedelta(seconds=(rows - i) * SPAN / rows)
        status = status_of(i, rows)
        event = ConversionEvent(
            pixel_id=f"pixel-{i % 3}",
            event_type=TYPES[i % 4],
            event_id=f"ev-{i}",
            event_time=when,
            expires_at=when + ACCEPTANCE_WINDOW,
            status=status,
            attempts=0 if status == "pending" else 1,
            next_attempt_at=when,
            last_error=f"error of event ev-{i}"
            if status in ("failed", "expired")
            else "",
            last_error_kind=ERROR_KINDS[i % 4]
            if status == "failed"
            else "expired"
            if status == "expired"
            else "",
            source_label=f"shop.Order:{i}",
            created_at=when,
        )
        # Stored in its own table by bulk_create(), with the event.
        event.payload = f'{{"id":"ev-{i}","pad":"{PAD}"}}'
        chunk.append(event)
        if len(chunk) == 5000:
            ConversionEvent.objects.bulk_create(chunk)
            chunk = []
    ConversionEvent.objects.bulk_create(chunk)
    # auto_now wrote the seed's time; a row last changed when it was created, as the
    # PostgreSQL seed writes it (the status page charts failures by updated_at).
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {EVENTS} SET updated_at = created_at")
    DeliveryBatch.objects.bulk_create(
        DeliveryBatch(
            claim_id=uuid.uuid4(),
            pixel_id=f"pixel-{i % 3}",
            size=500,
            outcome="retry" if i % 20 == 0 else "accepted",
            http_status=503 if i % 20 == 0 else 200,
            duration_ms=100 + i % 200,
            request_id=f"req_{i}",
            created_at=now
            - timedelta(seconds=(rows // 500 - i) * SPAN / max(rows // 500, 1)),
        )
        for i in range(1, rows // 500 + 1)
    )


def explain(sql_list: list[str], label: str) -> None:
    """EXPLAIN ANALYZE each query on the event table: its time, and any full scan."""
    slowest = (0.0, "")
    with connection.cursor() as cursor:
        for sql in sql_list:
            if not sql.lstrip().upper().startswith("SELECT") or EVENTS not in sql:
                continue
            cursor.execute("EXPLAIN (ANALYZE, FORMAT TEXT) " + sql)
            lines = [row[0] for row in cursor.fetchall()]
            plan = "\n".join(lines)
            took = float(lines[-1].split()[-2])  # "Execution Time: 0.123 ms"
            slowest = max(slowest, (took, sql[:160]))
            if f"Seq Scan on {EVENTS}" in plan:
                print(f"  SEQ SCAN in {label}: {sql[:200]}\n{plan}")
    print(f"  {label}: slowest event query {slowest[0]:.2f} ms: {slowest[1]}")


def explain_sqlite(sent: list[tuple[str, Any]], label: str) -> None:
    """EXPLAIN QUERY PLAN each query on the event table, with the parameters it was
    sent with (SQLite plans an IN list of bound values unlike the same list written
    out): print any that reads the whole table.
    """
    checked = 0
    with connection.cursor() as cursor:
        for sql, params in sent:
            if not sql.lstrip().upper().startswith("SELECT") or EVENTS not in sql:
                continue
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
            plan = [row[-1] for row in cursor.fetchall()]
            checked += 1
            if f"SCAN {EVENTS}" in plan:
                print(f"  FULL SCAN in {label}: {sql[:200]}\n  {plan}")
    print(f"EXPLAIN QUERY PLAN: checked {checked} queries of the {label}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args()
    rows = args.rows or (3000 if args.quick else 100_000)
    rounds = args.rounds or (3 if args.quick else 7)

    setup_test_environment()  # the test client's host, the in-memory email
    runner = get_runner(django.conf.settings)(verbosity=0, interactive=False)
    old_config = runner.setup_databases()
    try:
        started = time.perf_counter()
        if connection.vendor == "postgresql":
            seed_postgresql(rows)
        else:
            seed_in_python(rows)
        seeded = time.perf_counter() - started
        user = User.objects.create_superuser("bench", "bench@example.com", "x")
        client = Client()
        client.force_login(user)
        probe = f"ev-{rows // 2}"
        ours = "/admin/django_openai_capi/conversionevent/"
        default = "/default/django_openai_capi/conversionevent/"
        cases: dict[str, tuple[str, str | None]] = {
            "list, unfiltered": (ours, default),
            "list, status=failed": (
                ours + "?status__exact=failed",
                default + "?status__exact=failed",
            ),
            f"list, search {probe}": (ours + f"?q={probe}", default + f"?q={probe}"),
            "status page": ("/admin/django_openai_capi/deliverystatus/", None),
        }
        timings: dict[str, list[float]] = {}
        counts: dict[str, int] = {}
        slowest: dict[str, list[float]] = {}
        captured: dict[str, list[str]] = {}
        executed: dict[str, list[tuple[str, Any]]] = {}

        def measure(key: str, url: str) -> None:
            sent: list[tuple[str, Any]] = []

            def record(run: Any, sql: str, params: Any, many: bool, ctx: Any) -> Any:
                sent.append((sql, params))
                return run(sql, params, many, ctx)

            with CaptureQueriesContext(connection) as queries:
                begin = time.perf_counter()
                response = client.get(url)
                elapsed = time.perf_counter() - begin
            assert response.status_code == 200, (url, response.status_code)
            timings.setdefault(key, []).append(elapsed * 1000)
            counts[key] = len(queries)
            slowest.setdefault(key, []).append(
                max((float(q["time"]) for q in queries.captured_queries), default=0)
                * 1000
            )
            captured[key] = [query["sql"] for query in queries.captured_queries]
            # The SQL and parameters as sent, in a request of their own, untimed;
            # after the reads above, as a request empties the connection's log.
            if args.explain:
                with connection.execute_wrapper(record):
                    client.get(url)
                executed[key] = sent

        with override_settings(ROOT_URLCONF=__name__, DEBUG=False):
            for url, base in cases.values():  # warm up both sides once
                client.get(url)
                if base:
                    client.get(base)
            for _ in range(rounds):
                for name, (url, base) in cases.items():
                    measure(f"ours: {name}", url)
                    if base:
                        measure(f"default: {name}", base)
        print(
            f"database: {connection.vendor}; {rows:,} events "
            + f"(seeded in {seeded:.1f} s); median of {rounds} rounds"
        )
        print(
            f"{'':38} {'ms/request':>11} {'queries':>8} {'ratio to default':>17}"
            + f" {'slowest query ms':>17}"
        )
        reference = statistics.median(timings["default: list, unfiltered"])
        for name, (_, base) in cases.items():
            for side in ("default", "ours"):
                key = f"{side}: {name}"
                if key not in timings:
                    continue
                median = statistics.median(timings[key])
                against = (
                    statistics.median(timings[f"default: {name}"])
                    if base
                    else reference
                )
                print(
                    f"{key:38} {median:11.1f} {counts[key]:8d} {median / against:16.3f}x"
                    + f" {statistics.median(slowest[key]):17.1f}"
                )
        # The health probe (openai_capi_status, django-health-check, the page's
        # banners) on the same table, against the same baseline.
        probe_ms: list[float] = []
        for _ in range(rounds):
            with CaptureQueriesContext(connection) as queries:
                begin = time.perf_counter()
                health.assess()
                probe_ms.append((time.perf_counter() - begin) * 1000)
        median = statistics.median(probe_ms)
        print(
            f"{'ours: health.assess() (the probe)':38} {median:11.1f} "
            + f"{len(queries):8d} {median / reference:16.3f}x"
        )
        if args.explain and connection.vendor == "postgresql":
            with override_settings(ROOT_URLCONF=__name__):
                for extra in EXPLAINED:
                    measure(f"ours: {extra}", ours + extra)
            for key, sql_list in captured.items():
                if key.startswith("ours"):
                    explain(sql_list, key)
            print("EXPLAIN: checked every query of our pages")
        if args.explain and connection.vendor == "sqlite":
            key = "ours: status page"
            explain_sqlite(executed[key], key)
    finally:
        runner.teardown_databases(old_config)


if __name__ == "__main__":
    main()
