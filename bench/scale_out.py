"""Scale-out: 1, 2 and 4 ``openai_capi_send --loop`` processes against a fake with latency.

The fake Conversions API runs in its own process and answers every request after a
realistic latency (100 ms by default); the workers are the real command, in processes
of their own, on one database (PostgreSQL: ``FOR UPDATE SKIP LOCKED``; on SQLite the
claim is one atomic ``UPDATE ... RETURNING``). The workers start first and idle; the
clock starts when the events are committed and stops at the last request's answer.
Every event id the fake received is counted: each must arrive exactly once.

Why batches of 100 and 8,000 events on a 2-core machine: a request of 100 events costs
the fake about 9 ms of CPU and a worker about 11 ms, against 100 ms of latency, so four
workers stay well inside two cores and the run measures the claim's concurrency. At
1,000 events a request the fake's own validation (about 70 ms of CPU, in one process)
would be the bound, not our code. 8,000 events make 80 requests for one worker (about
12 s), enough for the start and the end of a run not to matter.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/capi_bench python bench/scale_out.py
    python bench/scale_out.py --quick      # CI: SQLite, 400 events, 50 ms latency
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import _common as c

c.setup()

from django.db import connection  # noqa: E402
from django.db.models import Max  # noqa: E402

from django_openai_capi.models import ConversionEvent, DeliveryBatch  # noqa: E402


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process of this run (the fake's, a worker's)."""
    seconds = c.cpu_seconds(pid)
    if seconds is None:
        raise RuntimeError(f"no CPU time in /proc for process {pid} (not Linux?)")
    return seconds


def start_workers(count: int, url: str, batch: int) -> list[subprocess.Popen[bytes]]:
    command = [
        sys.executable,
        "-m",
        "django",
        "openai_capi_send",
        "--skip-checks",
        "--loop",
        "--interval",
        "0.05",
        "--batch-size",
        str(batch),
    ]
    workers = [
        subprocess.Popen(
            command,
            cwd=c.ROOT,
            env=c.worker_env(url),
            stdout=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]
    deadline = time.monotonic() + 60
    while not all(has_looked(proc.pid) for proc in workers):
        if time.monotonic() > deadline:
            raise RuntimeError("the workers did not start")
        time.sleep(0.05)
    # Past its first look, a worker is in its loop: the clock may start.
    time.sleep(0.2)
    return workers


def has_looked(pid: int) -> bool:
    """Whether the worker has opened its database connection (its first pass)."""
    files = _open_files(pid)
    if connection.vendor == "postgresql":
        # Nothing else in a worker opens a socket before its first query.
        return any(target.startswith("socket:") for target in files)
    return str(connection.settings_dict["NAME"]) in files


def _open_files(pid: int) -> list[str]:
    targets = []
    fds = Path(f"/proc/{pid}/fd")
    for fd in fds.iterdir() if fds.exists() else []:
        try:
            targets.append(os.readlink(fd))
        except OSError:
            continue
    return targets


def run(
    workers: int, events: int, batch: int, fake: c.Fake, prefix: str
) -> tuple[float, float, float]:
    """Events/s for *workers*; the workers' and the fake's CPU seconds while sending."""
    c.clear_events()
    procs = start_workers(workers, fake.url, batch)
    try:
        fake_cpu = cpu_seconds(fake.proc.pid)
        worker_cpu = sum(cpu_seconds(proc.pid) for proc in procs)
        started = time.time()
        c.seed(events, prefix=prefix)
        pending = ConversionEvent.objects.exclude(status="sent")
        deadline = time.monotonic() + 600
        while pending.exists():
            if time.monotonic() > deadline:
                raise RuntimeError("the workers did not finish")
            time.sleep(0.05)
        fake_cpu = cpu_seconds(fake.proc.pid) - fake_cpu
        worker_cpu = sum(cpu_seconds(proc.pid) for proc in procs) - worker_cpu
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(60)
    finished = DeliveryBatch.objects.aggregate(last=Max("finished_at"))["last"]
    return events / (finished.timestamp() - started), worker_cpu, fake_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--events", type=int, help="per run; default 8,000 (400 quick)")
    parser.add_argument("--batch-size", type=int, help="default 100 (50 quick)")
    parser.add_argument(
        "--latency", type=float, help="seconds; default 0.1 (0.05 quick)"
    )
    parser.add_argument("--rounds", type=int, help="default 2 (1 quick)")
    args = parser.parse_args()
    events = args.events or (400 if args.quick else 8_000)
    batch = args.batch_size or (50 if args.quick else 100)
    latency = (
        args.latency if args.latency is not None else (0.05 if args.quick else 0.1)
    )
    rounds = args.rounds or (1 if args.quick else 2)
    counts = (1, 2, 4)

    rates: dict[int, list[float]] = {n: [] for n in counts}
    cpu: dict[int, list[tuple[float, float]]] = {n: [] for n in counts}
    expected: set[str] = set()
    with c.test_database(), c.Fake(latency=latency, ids=True) as fake:
        for r in range(rounds):
            for n in counts:
                prefix = f"w{n}r{r}-"
                rate, worker_cpu, fake_cpu = run(n, events, batch, fake, prefix)
                rates[n].append(rate)
                cpu[n].append((worker_cpu, fake_cpu))
                expected.update(f"{prefix}{i}" for i in range(events))
        received = fake.stop()

    batches = events / batch
    base = statistics.median(rates[1])
    print(
        f"{Path(__file__).name}: {c.vendor()}, {events:,} events per run in batches of "
        f"{batch}, fake latency {latency * 1000:.0f} ms, {os.cpu_count()} cores, "
        f"{rounds} rounds; medians"
    )
    c.table(
        [
            "workers",
            "events/s",
            "vs 1 worker",
            "workers' CPU ms/batch",
            "fake's CPU ms/batch",
        ],
        [
            [
                n,
                f"{statistics.median(rates[n]):,.0f}",
                f"{statistics.median(rates[n]) / base:.2f}x",
                f"{statistics.median(w for w, _ in cpu[n]) / batches * 1000:.1f}",
                f"{statistics.median(f for _, f in cpu[n]) / batches * 1000:.1f}",
            ]
            for n in counts
        ],
    )
    ids = set(received["ids"])
    missing = len(expected - ids)
    print(
        f"target: 4 workers >= 3x one ({statistics.median(rates[4]) / base:.2f}x); "
        f"events received {received['events']:,} of {len(expected):,}, "
        f"duplicates {received['duplicates']}, missing {missing}, "
        f"unexpected {len(ids - expected)}"
    )
    assert received["duplicates"] == 0 and missing == 0 and ids == expected


if __name__ == "__main__":
    main()
