"""What tracking adds to a host's checkout transaction, and where to build the payload.

Three ways of running the same transaction (an order and two lines, committed), timed
interleaved in one process on one database (the sides take turns one checkout at a
time, so that a burst of other work on a shared machine falls on all of them alike):

- untracked: the model has no conversion (the baseline);
- tracked: the conversion records its event in the transaction (what the app does);
- tracked + build on commit: the same, plus building the payload right after the commit
  in the same process (the alternative DESIGN §3 allows; the app builds in the worker).

Then the hot path: the same checkout inside a request, through ``OpenAICapiMiddleware``
(a RequestFactory request with ``oppref`` in its URL, the ``__obref`` cookie, an IP and
a user agent), untracked and tracked; tracked, the visitor's context is captured and
written to the ``context`` column in the same INSERT.

    python bench/tracked_save.py                    # SQLite file in the temporary directory
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test python bench/tracked_save.py
    python bench/tracked_save.py --quick            # CI: a few rounds, so it cannot rot
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
# Without DATABASE_URL, tests/settings.py gives SQLite a test database in a file, so
# that every commit is a real one. (A sqlite:/// DATABASE_URL would not: Django's test
# database for it, with no TEST NAME, is in memory.)

import django

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.test import RequestFactory  # noqa: E402
from django.test.utils import get_runner  # noqa: E402

from django_openai_capi import build_pending  # noqa: E402
from django_openai_capi.middleware import OpenAICapiMiddleware  # noqa: E402
from django_openai_capi.models import ConversionEvent  # noqa: E402
from django_openai_capi.tracking.registry import registry  # noqa: E402
from tests.testapp.models import Order, OrderLine  # noqa: E402


def checkout(number: str) -> None:
    with transaction.atomic():
        order = Order.objects.create(number=number, email="ada@example.com")
        OrderLine.objects.create(
            order=order, sku="a", name="A", quantity=1, unit_price_cents=1999
        )
        OrderLine.objects.create(
            order=order, sku="b", name="B", quantity=2, unit_price_cents=500
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds, per_round = (3, 20) if args.quick else (15, 200)

    runner = get_runner(django.conf.settings)(verbosity=0, interactive=False)
    old_config = runner.setup_databases()
    try:
        counter = iter(range(10**9))

        def untracked() -> None:
            with registry.override(Order, None):
                checkout(f"u{next(counter)}")

        def tracked() -> None:
            checkout(f"t{next(counter)}")

        def tracked_and_built() -> None:
            checkout(f"b{next(counter)}")
            build_pending()

        def view(request: HttpRequest) -> HttpResponse:
            checkout(str(request.GET["n"]))
            return HttpResponse(b"ok")

        middleware = OpenAICapiMiddleware(view)
        factory = RequestFactory(
            HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64)",
            REMOTE_ADDR="203.0.113.1",
        )
        factory.cookies["__obref"] = "123e4567-e89b-42d3-a456-426614174000"

        def request(number: str) -> None:
            response = middleware(
                factory.get("/checkout/", {"n": number, "oppref": "oppref_abc"})
            )
            assert isinstance(response, HttpResponse) and response.status_code == 200

        def untracked_request() -> None:
            with registry.override(Order, None):
                request(f"ru{next(counter)}")

        def tracked_request() -> None:
            request(f"rt{next(counter)}")

        # Taking turns one checkout at a time: on a machine shared with other work, a
        # burst of someone else's disk or CPU falls on every side alike.
        sides: dict[str, Callable[[], None]] = {
            "untracked (baseline)": untracked,
            "tracked: event recorded in the transaction": tracked,
            "in a request, untracked (baseline)": untracked_request,
            "in a request, tracked (context captured)": tracked_request,
        }
        # Apart, in a block of its own: its build would build the other sides' events.
        built_on_commit = "tracked + payload built on commit"
        worker = "(the worker's build of the same events, in batches)"
        order = [*list(sides)[:2], built_on_commit, *list(sides)[2:], worker]
        timings: dict[str, list[float]] = {name: [] for name in order}
        for _ in range(rounds):
            spent = dict.fromkeys(sides, 0.0)
            for _ in range(per_round):
                for name, side in sides.items():
                    started = time.perf_counter()
                    side()
                    spent[name] += time.perf_counter() - started
            for name, total in spent.items():
                timings[name].append(total / per_round * 1e6)
            # The recorded sides leave their events for the worker: built here, timed
            # apart, so that no side pays for another's events.
            started = time.perf_counter()
            built = build_pending(limit=10**6).built
            timings[worker].append((time.perf_counter() - started) / built * 1e6)
            started = time.perf_counter()
            for _ in range(per_round):
                tracked_and_built()
            timings[built_on_commit].append(
                (time.perf_counter() - started) / per_round * 1e6
            )
        assert not ConversionEvent.objects.unbuilt().exists()
        # The context reached the events of the request side, and only theirs.
        in_context = ConversionEvent.objects.filter(
            stored_payload__json__contains="oppref_abc"
        )
        assert (
            in_context.count() == Order.objects.filter(number__startswith="rt").count()
        )
        base = statistics.median(timings["untracked (baseline)"])
        in_request = statistics.median(timings["in a request, untracked (baseline)"])
        print(
            f"database: {connection.vendor}; {rounds} rounds of {per_round} checkouts each"
        )
        print(f"{'':54} {'µs/checkout':>12} {'ratio':>7}")
        for name, values in timings.items():
            median = statistics.median(values)
            # Each request side against the untracked request; the rest against the
            # untracked save.
            against = in_request if name.startswith("in a request") else base
            print(f"{name:54} {median:12.1f} {median / against:6.2f}x")
        print("target: a tracked save in a request at most 1.25x the untracked one")
    finally:
        runner.teardown_databases(old_config)


if __name__ == "__main__":
    main()
