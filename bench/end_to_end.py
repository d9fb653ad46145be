"""End to end: orders saved through the tracked path, then built and sent by the worker.

Three sides each round, interleaved, all posting to the same fake Conversions API in a
process of its own on loopback:

- end to end: orders of the example shop (a full identity, five lines) are saved in a
  checkout request through ``OpenAICapiMiddleware`` (each records its event in the
  transaction and keeps the visitor's context); then ``send_pending`` (what the worker
  runs) builds their payloads and sends them, timed from the first build to the last
  outcome;
- build step: as many orders saved the same way, then ``build_pending`` alone, timed:
  the part of the end-to-end time the build takes;
- floor: drain.py's, the same number of events in prebuilt 1,000-event bodies, posted
  with one ``requests.Session``: no database. Its events are these orders' own payload
  (the fake validates every event, so its cost follows their size).

The saves themselves are timed apart (a checkout's cost is bench/tracked_save.py's).
Last, one build pass of as many events timed by part (source fetch, hooks, build_event,
encode_event, the writes), and one under cProfile, by the functions' own time.

    python bench/end_to_end.py                # 5 rounds of 5,000 orders, SQLite file
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/capi_bench python bench/end_to_end.py
    python bench/end_to_end.py --quick        # CI: 3 rounds of 1,000, so it cannot rot
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import _common as c

c.setup()

import requests  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.test import RequestFactory, override_settings  # noqa: E402

from django_openai_capi import build_pending  # noqa: E402
from django_openai_capi.api.events import encode_request  # noqa: E402
from django_openai_capi.delivery import send_pending  # noqa: E402
from django_openai_capi.middleware import OpenAICapiMiddleware  # noqa: E402
from django_openai_capi.models import EventPayload  # noqa: E402
from django_openai_capi.tracking import building, conversion, enrich  # noqa: E402
from example_project.shop.models import Order, OrderLine  # noqa: E402

BATCH = 1000


def checkout(request: HttpRequest) -> HttpResponse:
    """The shop's checkout view: the order first, its lines after, one transaction."""
    n = request.GET["n"]
    with transaction.atomic():
        order = Order.objects.create(
            number=f"ORD-{n}",
            email=f" Ada.Lovelace+{n}@Example.com ",
            phone="+44 20 7946 0958",
            customer_external_id=f"customer_{n}",
            currency="GBP",
            country="GB",
            city="London",
            postal_code="NW1 6XE",
        )
        OrderLine.objects.bulk_create(
            OrderLine(
                order=order,
                sku=f"sku_{i}",
                name=f"Item {i}",
                unit_price=Decimal("25.99"),
            )
            for i in range(5)
        )
    return HttpResponse(b"ok")


class Shop:
    """Checkout requests through the middleware, each with a visitor's context."""

    def __init__(self) -> None:
        self.middleware = OpenAICapiMiddleware(checkout)
        self.factory = RequestFactory(
            HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64)", REMOTE_ADDR="203.0.113.1"
        )
        self.factory.cookies["__obref"] = "123e4567-e89b-42d3-a456-426614174000"
        self.placed = 0

    def place(self, count: int) -> float:
        """Place *count* orders; the seconds it took."""
        started = time.perf_counter()
        for _ in range(count):
            self.placed += 1
            request = self.factory.get(
                "/checkout/", {"n": str(self.placed), "oppref": "oppref_abc"}
            )
            response = self.middleware(request)
            assert isinstance(response, HttpResponse) and response.status_code == 200
        return time.perf_counter() - started


def clear() -> None:
    c.clear_events()
    Order.objects.all().delete()


def floor_bodies(template: str, rounds: int, per_round: int) -> list[bytes]:
    """1,000-event bodies of *template*, each event under an id of its own."""
    event = json.loads(template)

    def renamed(event_id: str) -> str:
        return json.dumps(
            {**event, "id": event_id}, sort_keys=True, separators=(",", ":")
        )

    return [
        encode_request([renamed(f"floor{r}-{b}-{i}") for i in range(BATCH)])
        for r in range(rounds)
        for b in range(per_round // BATCH)
    ]


#: Where a build pass spends its time: each part timed around the functions that do
#: it, (module, name), patched for one pass (a timer costs well under a microsecond).
PARTS = [
    ("source fetch: get_queryset().in_bulk(), prefetch", [(building, "_load")]),
    ("hooks: get_user, get_data, get_source_url ...", [(conversion, "_call")]),
    ("build_event: normalise, hash, validate", [(enrich, "build_event")]),
    ("encode_event: the canonical JSON", [(building, "encode_event")]),
    (
        "the writes: mark built, store payloads, outcomes",
        [
            (building, "_store_payloads"),
            (building, "_store_outcomes"),
            (building, "_signal_outcomes"),
        ],
    ),
]


def timed_parts(work: Callable[[], object]) -> tuple[dict[str, float], float]:
    """Run *work* with the functions of PARTS timed; seconds by part, and in all."""
    spent = dict.fromkeys((label for label, _ in PARTS), 0.0)
    originals: list[tuple[Any, str, Any]] = []

    def timer(label: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[label] += time.perf_counter() - started

        return timed

    for label, functions in PARTS:
        for module, name in functions:
            original = getattr(module, name)
            originals.append((module, name, original))
            setattr(module, name, timer(label, original))
    try:
        started = time.perf_counter()
        work()
        total = time.perf_counter() - started
    finally:
        for module, name, original in originals:
            setattr(module, name, original)
    # build_event runs inside the hooks' caller, not inside a hook: no overlap.
    return spent, total


def where_the_build_goes(shop: Shop, count: int) -> list[list[str]]:
    """One build pass of *count* recorded events, timed by part."""
    clear()
    shop.place(count)
    spent, total = timed_parts(lambda: build_pending(limit=count))
    rows = [
        [label, f"{seconds * 1e6 / count:.1f}", f"{seconds / total:.0%}"]
        for label, seconds in spent.items()
    ]
    rest = total - sum(spent.values())
    rows.append(
        [
            "the rest: the unbuilt rows read, context decoded, the loop",
            f"{rest * 1e6 / count:.1f}",
            f"{rest / total:.0%}",
        ]
    )
    rows.append(["build_pending, in all", f"{total * 1e6 / count:.1f}", "100%"])
    return rows


def profile_build(shop: Shop, count: int, top: int = 12) -> list[list[str]]:
    """One build pass under cProfile: the functions with the most time of their own."""
    clear()
    shop.place(count)
    profiler = cProfile.Profile()
    profiler.runcall(build_pending, limit=count)
    stats = pstats.Stats(profiler)
    raw: dict[tuple[str, int, str], Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(
        own for (_, _, _, own, _) in [(*v[:3], v[2], v[3]) for v in raw.values()]
    )
    ranked = sorted(raw.items(), key=lambda item: item[1][2], reverse=True)[:top]
    return [
        [
            f"{Path(filename).parent.name}/{Path(filename).name}:{name}",
            f"{calls:,}",
            f"{own * 1e6 / count:.1f}",
            f"{own / total:.0%}",
        ]
        for (filename, _, name), (_, calls, own, _, _) in ranked
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, help="default 5 (3 quick)")
    parser.add_argument("--orders", type=int, help="per round, default 5,000 (1,000)")
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 5)
    per_round = max(
        BATCH, (args.orders or (1000 if args.quick else 5000)) // BATCH * BATCH
    )

    with (
        c.test_database(),
        c.Fake() as fake,
        override_settings(OPENAI_CAPI_ENDPOINT=fake.url),
    ):
        shop = Shop()
        # One order first: its payload is the floor's event.
        shop.place(1)
        assert send_pending(batch_size=BATCH).sent == 1
        template = EventPayload.objects.get().json
        bodies = floor_bodies(template, rounds, per_round)
        session = requests.Session()
        headers = {
            "Authorization": f"Bearer {c.API_KEY}",
            "Content-Type": "application/json",
        }
        url = f"{fake.url}?pid={c.PIXEL}"
        rates: dict[str, list[float]] = {
            "e2e": [],
            "build": [],
            "floor": [],
            "save": [],
        }
        sent = 1  # the template's order

        def timed(side: str, count: int, work: Callable[[], object]) -> None:
            started = time.perf_counter()
            work()
            rates[side].append(count / (time.perf_counter() - started))

        for r in range(rounds):
            clear()
            rates["save"].append(per_round / shop.place(per_round))

            def end_to_end() -> None:
                report = send_pending(batch_size=BATCH)
                assert report.built == report.sent == per_round, report.summary()

            timed("e2e", per_round, end_to_end)
            sent += per_round

            clear()
            shop.place(per_round)

            def build() -> None:
                assert build_pending(limit=10**9).built == per_round

            timed("build", per_round, build)
            # Sent, so that the fake's count of receipts stays whole; not timed.
            assert send_pending(batch_size=BATCH).sent == per_round
            sent += per_round

            mine = bodies[r * (per_round // BATCH) : (r + 1) * (per_round // BATCH)]

            def floor(mine: list[bytes] = mine) -> None:
                for body in mine:
                    session.post(url, data=body, headers=headers).raise_for_status()

            timed("floor", per_round, floor)
            sent += per_round

        breakdown = where_the_build_goes(shop, per_round)
        assert send_pending(batch_size=BATCH).sent == per_round
        sent += per_round
        profiled = profile_build(shop, per_round)
        assert send_pending(batch_size=BATCH).sent == per_round
        sent += per_round
        received = fake.stop()

    median = {side: statistics.median(values) for side, values in rates.items()}
    print(
        f"{Path(__file__).name}: {connection.vendor}, {rounds} rounds of "
        f"{per_round:,} orders (batches of {BATCH}), the event's payload "
        f"{len(template.encode()):,} bytes; medians"
    )
    c.table(
        ["side", "events/s", "side / floor"],
        [
            [name, f"{median[side]:,.0f}", f"{median[side] / median['floor']:.1%}"]
            for name, side in [
                ("end to end: send_pending builds and sends", "e2e"),
                ("the build step alone: build_pending", "build"),
                ("floor: prebuilt bodies, requests, no database", "floor"),
                ("(the checkouts that recorded them, in requests)", "save"),
            ]
        ],
    )
    build_share = median["e2e"] / median["build"]
    print(
        f"end to end / floor = {median['e2e'] / median['floor']:.1%} (target >= 50%); "
        f"the build step is {build_share:.0%} of the end-to-end time"
    )
    print()
    print(f"where one build pass of {per_round:,} events spends its time:")
    c.table(["part", "µs per event", "share"], breakdown)
    print()
    print("the same under cProfile (its overhead included), by a function's own time:")
    c.table(["function", "calls", "µs per event", "share"], profiled)
    assert received["events"] == sent, (received, sent)
    assert received["duplicates"] == 0, received
    print()
    print(
        f"the fake received {received['events']:,} events in "
        f"{received['requests']:,} requests; duplicates: {received['duplicates']}"
    )


if __name__ == "__main__":
    main()
