"""A large backlog (1,000,000 pending events) drained by one worker with flat memory.

The events are seeded in this process; the drain is ``manage.py openai_capi_send`` in
a process of its own, so that its peak RSS (from ``wait4``) is the worker's alone. The
baseline is the same command, started the same way, with nothing to send: what Django
and the app cost before a single event. Also timed at full backlog: the pixel list
(``due_pixels``) that every pass starts with, and one claim.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/capi_bench python bench/backlog.py
    python bench/backlog.py                 # SQLite file
    python bench/backlog.py --quick         # CI: 10,000 events
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import _common as c

c.setup()

from django.utils import timezone  # noqa: E402

from django_openai_capi.delivery.claim import claim_batch  # noqa: E402
from django_openai_capi.models import ConversionEvent  # noqa: E402

CHUNK = 100_000


def distinct_pixels() -> list[str]:
    """What due_pixels() was: a DISTINCT over every due, built, pending row."""
    query = ConversionEvent.objects.filter(
        status="pending", next_attempt_at__lte=timezone.now(), built_at__isnull=False
    )
    return sorted(set(query.values_list("pixel_id", flat=True).distinct()))


def send_command(url: str) -> tuple[float, float, int]:
    """Run one ``openai_capi_send``; its wall time, peak RSS (MiB) and exit status."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "django", "openai_capi_send", "--skip-checks"],
        cwd=c.ROOT,
        env=c.worker_env(url),
        stdout=subprocess.DEVNULL,
    )
    status, rss = c.peak_rss_mib(proc)
    return time.perf_counter() - started, rss, status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--events", type=int, help="default 1,000,000 (10,000 quick)")
    args = parser.parse_args()
    total = args.events or (10_000 if args.quick else 1_000_000)

    with c.test_database(), c.Fake() as fake:
        _, idle_rss, status = send_command(fake.url)
        assert status == 0
        started = time.perf_counter()
        for start in range(0, total, CHUNK):
            c.seed(min(CHUNK, total - start), prefix="b", start=start)
        seeding = time.perf_counter() - started

        started = time.perf_counter()
        pixels = ConversionEvent.objects.due_pixels()
        pixel_list = time.perf_counter() - started
        assert pixels == [c.PIXEL]
        started = time.perf_counter()
        assert distinct_pixels() == pixels
        distinct = time.perf_counter() - started
        started = time.perf_counter()
        claim = claim_batch(c.PIXEL, size=1000)
        claiming = time.perf_counter() - started
        assert claim is not None
        # Back to pending: the worker sends these too.
        ConversionEvent.objects.filter(claim_id=claim.id).update(
            status="pending", claim_id=None, lease_expires_at=None
        )

        elapsed, rss, status = send_command(fake.url)
        assert status == 0
        sent = ConversionEvent.objects.filter(status="sent").count()
        received = fake.stop()

    print(
        f"{Path(__file__).name}: {c.vendor()}, {total:,} pending order events "
        f"(seeded in {seeding:.0f} s), one openai_capi_send process, batches of 1000"
    )
    c.table(
        ["", "value"],
        [
            [
                "peak RSS, openai_capi_send with nothing to send (baseline)",
                f"{idle_rss:.1f} MiB",
            ],
            [f"peak RSS, openai_capi_send draining {total:,}", f"{rss:.1f} MiB"],
            ["ratio", f"{rss / idle_rss:.2f}x"],
            ["drain wall time", f"{elapsed:.1f} s"],
            ["events/s", f"{total / elapsed:,.0f}"],
            ["due_pixels() at full backlog (skip scan)", f"{pixel_list * 1000:.1f} ms"],
            ["the DISTINCT it replaced (baseline)", f"{distinct * 1000:.1f} ms"],
            ["one claim of 1,000 at full backlog", f"{claiming * 1000:.1f} ms"],
        ],
    )
    print(
        f"target: peak RSS under 150 MB ({rss * 2**20 / 1e6:.0f} MB); sent {sent:,}, "
        f"received {received['events']:,}, duplicates {received['duplicates']}"
    )
    assert sent == total and received["distinct"] == total


if __name__ == "__main__":
    main()
