"""Draining a backlog: send_pending against the floor and the naive way, interleaved.

Three sides, each round, all posting to the same fake Conversions API in its own
process on loopback:

- drain: ``send_pending`` (what ``openai_capi_send``, the task and the wake-up run:
  claim, splice, one request, the DeliveryBatch row, the outcome update) on built,
  due, pending order events seeded in one statement;
- floor: the same number of requests with the same 1,000-event bodies, prebuilt, posted
  with a ``requests.Session``: no database at all;
- naive: one POST per event and one row update per event, on a sample.

Then queries per batch for batch sizes 10, 100 and 1,000, and the tracemalloc peak of
a drain. On PostgreSQL, the write-ahead log each drain writes per delivered event
(``pg_current_wal_insert_lsn()`` before and after), next to the payload's own size:
the WAL position is the whole server's, so run it on a server nothing else writes to.

    python bench/drain.py                  # 100,000 events, SQLite file
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/capi_bench python bench/drain.py
    python bench/drain.py --quick          # CI: 5,000 events, so that it cannot rot
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import _common as c

c.setup()

import requests  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import override_settings  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from django_openai_capi.api.events import encode_request  # noqa: E402
from django_openai_capi.delivery import DeliveryReport, send_pending  # noqa: E402
from django_openai_capi.models import ConversionEvent  # noqa: E402

BATCH = 1000


def drain(url: str, size: int = BATCH) -> DeliveryReport:
    with override_settings(OPENAI_CAPI_ENDPOINT=url):
        return send_pending(batch_size=size)


def wal_position() -> str | None:
    """Where PostgreSQL's write-ahead log is now; ``None`` on SQLite."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_insert_lsn()")
        return str(cursor.fetchone()[0])


def wal_bytes_since(start: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s)", [start]
        )
        return int(cursor.fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--events", type=int, help="default 100,000 (5,000 quick)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--naive-sample", type=int, help="events per round, naive")
    parser.add_argument(
        "--latency",
        type=float,
        default=0.0,
        help="seconds the fake adds to every answer (a network's round trip)",
    )
    args = parser.parse_args()
    total = args.events or (5_000 if args.quick else 100_000)
    rounds = args.rounds
    per_round = max(BATCH, total // rounds // BATCH * BATCH)
    sample = args.naive_sample or (100 if args.quick else 500)

    with c.test_database(), c.Fake(latency=args.latency) as fake:
        session = requests.Session()
        headers = {
            "Authorization": f"Bearer {c.API_KEY}",
            "Content-Type": "application/json",
        }
        url = f"{fake.url}?pid={c.PIXEL}"
        payload = c.order_payload()
        bodies = [
            encode_request(
                [payload.replace(c.ID_MARK, f"floor{r}-{b}-{i}") for i in range(BATCH)]
            )
            for r in range(rounds)
            for b in range(per_round // BATCH)
        ]
        rates: dict[str, list[float]] = {"drain": [], "floor": [], "naive": []}
        # CPU ms per 1,000-event batch, by process: (this one, the database's, the
        # fake's), and the wall time of a batch.
        budget: dict[str, list[tuple[float, float, float, float]]] = {
            "drain": [],
            "floor": [],
        }
        database_pid = c.backend_pid()
        # Processes whose CPU time /proc does not show (not Linux, or a database
        # server on another machine).
        unreadable: set[str] = set()
        #: WAL bytes per delivered event, by round.
        wal: list[float] = []
        seeded = 0

        def cpu() -> tuple[float, float, float]:
            database = None if database_pid is None else c.cpu_seconds(database_pid)
            fake_cpu = c.cpu_seconds(fake.proc.pid)
            if fake_cpu is None:
                unreadable.add("fake")
            if database_pid is not None and database is None:
                unreadable.add("database")
            return (time.process_time(), database or 0.0, fake_cpu or 0.0)

        def timed(side: str, count: int, work: Callable[[], object]) -> None:
            before = cpu()
            started = time.perf_counter()
            work()
            elapsed = time.perf_counter() - started
            rates[side].append(count / elapsed)
            if side in budget:
                batches = count / BATCH
                own, database, fake_cpu = (
                    (b - a) * 1000 / batches for a, b in zip(before, cpu(), strict=True)
                )
                budget[side].append((own, database, fake_cpu, elapsed * 1000 / batches))

        for r in range(rounds):
            c.clear_events()
            c.seed(per_round, prefix=f"d{r}-")
            seeded += per_round

            def draining() -> None:
                report = drain(fake.url)
                assert report.sent == per_round, report.summary()
                assert report.batches == per_round // BATCH, report.summary()

            start = wal_position()
            timed("drain", per_round, draining)
            if start is not None:
                wal.append(wal_bytes_since(start) / per_round)

            mine = bodies[r * (per_round // BATCH) : (r + 1) * (per_round // BATCH)]

            def floor(mine: list[bytes] = mine) -> None:
                for body in mine:
                    session.post(url, data=body, headers=headers).raise_for_status()

            timed("floor", per_round, floor)

            c.clear_events()
            c.seed(sample, prefix=f"n{r}-")
            seeded += sample

            def naive() -> None:
                rows = ConversionEvent.objects.filter(status="pending").values_list(
                    "id", "stored_payload__json"
                )
                for pk, event in list(rows):
                    assert event is not None
                    body = encode_request([event])
                    session.post(url, data=body, headers=headers).raise_for_status()
                    ConversionEvent.objects.filter(pk=pk).update(status="sent")

            timed("naive", sample, naive)

        after_checkpoint = None
        if wal:
            # Once more right after a checkpoint: the first change of each page since
            # then writes the whole page into the log (full_page_writes, the default).
            c.clear_events()
            c.seed(per_round, prefix="wal-")
            seeded += per_round
            with connection.cursor() as cursor:
                cursor.execute("CHECKPOINT")
            start = wal_position()
            assert start is not None
            drain(fake.url)
            after_checkpoint = wal_bytes_since(start) / per_round
        queries = per_batch_queries(fake.url)
        seeded += sum(9 * size for size, *_ in queries)
        c.clear_events()
        c.seed(per_round, prefix="mem-")
        seeded += per_round
        tracemalloc.start()
        drain(fake.url)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        received = fake.stop()

    median = {side: statistics.median(values) for side, values in rates.items()}
    print(
        f"{Path(__file__).name}: {c.vendor()}, {rounds} rounds of {per_round:,} events "
        f"(batches of {BATCH}), naive on {sample} per round, "
        f"{args.latency * 1000:.0f} ms of latency; medians"
    )
    c.table(
        ["side", "events/s", "drain / side"],
        [
            [name, f"{median[side]:,.0f}", f"{median['drain'] / median[side]:.2f}x"]
            for name, side in [
                ("drain: send_pending", "drain"),
                ("floor: prebuilt bodies, requests, no database", "floor"),
                ("naive: one POST + one UPDATE per event", "naive"),
            ]
        ],
    )
    print(
        f"drain / floor = {median['drain'] / median['floor']:.1%} (target >= 80%); "
        f"drain / naive = {median['drain'] / median['naive']:.0f}x (target >= 50x)"
    )
    print()
    cores = len(os.sched_getaffinity(0))
    medians = {
        side: [statistics.median(values) for values in zip(*rows, strict=True)]
        for side, rows in budget.items()
    }

    def database_cell(value: float) -> str:
        if database_pid is None:
            return "(in this process)"
        return "n/a" if "database" in unreadable else f"{value:.1f}"

    c.table(
        [
            f"CPU ms per {BATCH}-event batch",
            "this process",
            "database server",
            "fake",
            "sum",
            "wall time",
        ],
        [
            [
                name,
                f"{medians[side][0]:.1f}",
                database_cell(medians[side][1]),
                f"{medians[side][2]:.1f}",
                f"{sum(medians[side][:3]):.1f}",
                f"{medians[side][3]:.1f}",
            ]
            for name, side in [("drain", "drain"), ("floor", "floor")]
        ],
    )
    drain_cpu = sum(medians["drain"][:3])
    floor_wall = medians["floor"][3]
    if not unreadable:
        print(
            f"ceiling on {cores} cores: a drained batch needs {drain_cpu:.1f} ms of "
            f"CPU, so at least {drain_cpu / cores:.1f} ms of wall time; the floor's "
            f"batch takes {floor_wall:.1f} ms: the CPU allows drain / floor up to "
            f"{floor_wall / (drain_cpu / cores):.0%} on this machine"
        )
    else:
        print(
            "ceiling: not known here (no CPU time for: "
            + ", ".join(sorted(unreadable))
            + ")"
        )
    if wal:
        size = len(c.order_payload().encode())
        median_wal = statistics.median(wal)
        print(
            f"write-ahead log per delivered event: {median_wal:,.0f} bytes (median of "
            f"{len(wal)} drains; {min(wal):,.0f} to {max(wal):,.0f}), "
            f"{after_checkpoint:,.0f} bytes right after a CHECKPOINT; the payload "
            f"itself is {size:,} bytes ({median_wal / size:.2f}x its size)"
        )
    print()
    c.table(
        [
            "batch size",
            "batches (two passes)",
            "statements per batch",
            "statements of the pass around the batches",
        ],
        queries,
    )
    print("target: at most 5 queries per batch, whatever the batch size")
    print()
    print(
        f"tracemalloc peak of one drain of {per_round:,} events: {peak / 2**20:.1f} MiB"
    )
    expected = seeded + len(bodies) * BATCH
    assert received["events"] == expected, (received, expected)
    assert received["duplicates"] == 0, received
    print(
        f"the fake received {received['events']:,} events in "
        f"{received['requests']:,} requests; duplicates: {received['duplicates']}"
    )


#: Transaction control, which SQLite's backend logs as statements and PostgreSQL's
#: does not: left out of the counts, so that both count the same thing.
CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def per_batch_queries(url: str) -> list[tuple[int, str, float, int]]:
    """Statements per batch, and those of the pass around the batches.

    Measured as a difference: the same pass drains 3 batches, then 6, and what the
    three extra batches added, divided by three, is one batch's cost (its claim, its
    request's row, its outcome). What is left is the pass's own: the reaper, the
    expiry sweep, the build step, the pixel list, the pause row and the claim that
    finds nothing.
    """
    results = []
    for size in (10, 100, 1000):
        counts = []
        for batches in (3, 6):
            c.clear_events()
            c.seed(batches * size, prefix=f"q{size}-{batches}-")
            with (
                CaptureQueriesContext(connection) as captured,
                override_settings(OPENAI_CAPI_ENDPOINT=url),
            ):
                report = send_pending(batch_size=size)
            assert report.sent == batches * size, report.summary()
            assert report.batches == batches, report.summary()
            counts.append(
                sum(
                    not query["sql"].startswith(CONTROL)
                    for query in captured.captured_queries
                )
            )
        per_batch = (counts[1] - counts[0]) / 3
        results.append((size, "3 and 6", per_batch, round(counts[0] - 3 * per_batch)))
    return results


if __name__ == "__main__":
    main()
