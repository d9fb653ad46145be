"""Helpers shared by the delivery benchmarks; not a benchmark itself.

- :func:`setup` configures Django on the test settings: SQLite (a file, so that worker
  processes see it) unless ``DATABASE_URL`` is set, in which case PostgreSQL.
- :func:`test_database` creates and drops a fresh database for one run.
- :func:`seed` inserts built, due, pending events and their payloads, in one
  ``INSERT ... SELECT`` each.
- :class:`Fake` serves the project's fake Conversions API in a process of its own, so
  that it shares no GIL with the code under test, and reports what it received.
- :func:`table` prints the results.

Run as a script (CI runs every ``bench/*.py``) it only says what it is.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PIXEL = "test-pixel"
API_KEY = "test-key"
#: Replaced by each event's id in the seeded payload.
ID_MARK = "__EVENT_ID__"


def setup() -> None:
    """Django on tests/settings.py (SQLite file, or DATABASE_URL)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()


def vendor() -> str:
    from django.db import connection

    return str(connection.vendor)


@contextlib.contextmanager
def test_database() -> Iterator[None]:
    """A migrated database of its own for this run, dropped afterwards."""
    import django.conf
    from django.test.utils import get_runner

    runner = get_runner(django.conf.settings)(verbosity=0, interactive=False)
    old_config = runner.setup_databases()
    try:
        yield
    finally:
        runner.teardown_databases(old_config)


def order_payload() -> str:
    """The stored JSON of a rich order (full identity, five items), id left as a mark.

    The order bench/event_layer.py builds: what a shop's outbox holds.
    """
    from event_layer import ORDER

    from django_openai_capi.api import build_event, encode_event

    now = time.time_ns() // 1_000_000
    fields = {**ORDER, "event_id": ID_MARK, "event_time": now - 60_000}
    return encode_event(build_event("order_created", now=now, **fields))  # type: ignore[arg-type]


def seed(count: int, *, prefix: str, start: int = 0, pixel_id: str = PIXEL) -> None:
    """Insert *count* built, due, pending order events ``{prefix}{start}`` ... at once.

    One ``INSERT ... SELECT`` over a generated series (a recursive CTE on SQLite), and
    one more for their payloads, each spliced from one prebuilt event: what an outbox
    holds once the worker has built the payloads and before it sends them. Committed,
    for other processes.
    """
    from django.db import connection, transaction
    from django.utils import timezone

    from django_openai_capi.models import (
        ACCEPTANCE_WINDOW,
        ConversionEvent,
        EventPayload,
    )

    now = timezone.now()
    event_time = now - timedelta(minutes=1)

    def prep(name: str, value: object) -> object:
        field = ConversionEvent._meta.get_field(name)
        return field.get_db_prep_value(value, connection)  # type: ignore[union-attr]

    table = connection.ops.quote_name(ConversionEvent._meta.db_table)
    event_id = "CAST(%s AS text) || CAST(n AS text)"
    if connection.vendor == "postgresql":
        series = "generate_series(%s, %s) AS s(n)"
        series_params: list[object] = [start, start + count - 1]
        head = ""
    else:
        head = (
            "WITH RECURSIVE s(n) AS (SELECT %s UNION ALL SELECT n + 1 FROM s "
            "WHERE n < %s) "
        )
        series = "s"
        series_params = [start, start + count - 1]
    columns = (
        "pixel_id, event_type, event_id, built_at, event_time, expires_at, status, "
        "attempts, next_attempt_at, last_error, last_error_kind, source_label, "
        "created_at, updated_at, claim_ids"
    )
    select = (
        f"SELECT %s, 'order_created', {event_id}, "
        f"%s, %s, %s, 'pending', 0, %s, '', '', "
        f"'bench:' || CAST(n AS text), %s, %s, '' FROM {series}"
    )
    select_params: list[object] = [
        pixel_id,
        prefix,
        prep("built_at", now),
        prep("event_time", event_time),
        prep("expires_at", event_time + ACCEPTANCE_WINDOW),
        prep("next_attempt_at", now - timedelta(seconds=1)),
        prep("created_at", now),
        prep("updated_at", now),
    ]
    if connection.vendor == "postgresql":
        sql = f"INSERT INTO {table} ({columns}) {select}"
        params = select_params + series_params
    else:
        sql = f"{head}INSERT INTO {table} ({columns}) {select}"
        params = series_params + select_params
    payloads = connection.ops.quote_name(EventPayload._meta.db_table)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")
        (before,) = cursor.fetchone()
        cursor.execute(sql, params)  # type: ignore[arg-type]
        cursor.execute(
            f"INSERT INTO {payloads} (event_id, json) "
            f"SELECT id, replace(%s, %s, event_id) FROM {table} WHERE id > %s",
            [order_payload(), ID_MARK, before],
        )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {table}")
            cursor.execute(f"ANALYZE {payloads}")


def clear_events() -> None:
    """Delete every event and request row: each round starts from the same table."""
    from django.db import connection

    from django_openai_capi.models import ConversionEvent, DeliveryBatch, EventPayload

    # The payloads first: they refer to the events.
    models = [EventPayload, ConversionEvent, DeliveryBatch]
    tables = [connection.ops.quote_name(model._meta.db_table) for model in models]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # TRUNCATE, all at once (a foreign key joins two of them): a DELETE would
            # leave dead tuples behind.
            cursor.execute(f"TRUNCATE {', '.join(tables)}")
            return
        for table in tables:
            cursor.execute(f"DELETE FROM {table}")


def worker_env(endpoint: str, **overrides: object) -> dict[str, str]:
    """The environment of a worker process on this run's database."""
    from tests.processes import worker_env as env

    return env(endpoint, **overrides)


def peak_rss_mib(proc: subprocess.Popen[Any]) -> tuple[int, float]:
    """Wait for *proc*; its exit status and its own peak RSS (MiB), from wait4()."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    # ru_maxrss is in KiB on Linux.
    return proc.returncode, usage.ru_maxrss / 1024


class Fake:
    """The fake Conversions API in a process of its own (see :func:`serve_fake`).

    It keeps a count of receipts per event and forgets the request bodies, so that a
    million events do not hold a gigabyte in the fake. :meth:`stop` returns what it
    received.
    """

    def __init__(self, *, latency: float = 0.0, ids: bool = False) -> None:
        fd, name = tempfile.mkstemp(suffix=".json")
        os.close(fd)
        self._dump = Path(name)
        args = ["--latency", str(latency), "--dump", str(self._dump)]
        if ids:
            args.append("--ids")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import bench._common as c; c.serve_fake()", *args],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http"):
            raise RuntimeError("the fake Conversions API did not start")

    def stop(self) -> dict[str, Any]:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        try:
            result: dict[str, Any] = json.loads(self._dump.read_text())
        finally:
            self._dump.unlink()
        return result

    def __enter__(self) -> Fake:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def serve_fake() -> None:
    """The fake's process: serve until SIGTERM, then write what was received."""
    import argparse
    import threading
    from collections import Counter

    from django_openai_capi.testing import FakeConversionsAPI

    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--dump", required=True)
    parser.add_argument("--ids", action="store_true")
    args = parser.parse_args()

    class Forgetful(FakeConversionsAPI):
        # Keeps only the receipts: every request's body would otherwise stay in
        # memory (and the dict of accepted events with it) for the whole run.
        # serve(), not handle(): the HTTP transport calls serve().
        def serve(self, *a: Any, **kw: Any) -> Any:
            response = super().serve(*a, **kw)
            with self._lock:
                self._requests.clear()
                self._accepted.clear()
                self.handled += 1
            return response

        handled = 0

    fake = Forgetful(API_KEY, [PIXEL], latency=args.latency)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    fake.start("127.0.0.1", 0)
    print(fake.url, flush=True)
    stopped.wait()
    fake.stop()
    receipts: Counter[Any] = fake.receipts
    result: dict[str, Any] = {
        "requests": fake.handled,
        "events": sum(receipts.values()),
        "distinct": len(receipts),
        "duplicates": sum(count - 1 for count in receipts.values()),
    }
    if args.ids:
        result["ids"] = sorted(key.id for key in receipts)
    Path(args.dump).write_text(json.dumps(result))


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user and system) that process *pid* has used; ``None`` if unreadable.

    From /proc: for the fake's process and the database server's backend, which
    ``time.process_time()`` of this process does not see. ``None`` for a database on
    another machine.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # utime and stime: fields 14 and 15 of stat(5), 12 and 13 after the name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backend_pid() -> int | None:
    """The PostgreSQL server process of this connection; ``None`` on SQLite."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print *rows* under *headers*, the first column left-aligned, the rest right."""
    cells = [[str(cell) for cell in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print(
            "  ".join(
                cell.ljust(width) if i == 0 else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            print("  ".join("-" * width for width in widths))


if __name__ == "__main__":
    print(__doc__.splitlines()[0])
