"""What building an event costs, against just encoding one that is already built.

Both sides run interleaved in one process on the same input, so the ratio holds on any
machine. The baseline is the floor for any outbox that stores JSON: one json.dumps of
a finished event. The measured side is what a tracked save will pay on top: identity
normalisation and hashing, stripping, validation and the canonical encoding.

    python bench/event_layer.py            # full run
    python bench/event_layer.py --quick    # a few thousand rounds (CI: keeps it running)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

# This checkout's package, not whichever one the virtualenv has installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from django_openai_capi.api import build_event, encode_event

NOW = time.time_ns() // 1_000_000

ORDER = {
    "event_id": "shop.order:12345",
    "event_time": NOW - 60_000,
    "action_source": "web",
    "source_url": "https://shop.example.com/checkout/confirmation",
    "oppref": "oppref_abc",
    "user": {
        "email": " Ada.Lovelace@Example.com ",
        "phone": "+44 20 7946 0958",
        "external_id": "customer_123",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "city": "London",
        "postal_code": "NW1 6XE",
        "country": "gb",
        "ip_address": "203.0.113.1",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
        "obref": "123e4567-e89b-42d3-a456-426614174000",
    },
    "data": {
        "amount": 12999,
        "currency": "GBP",
        "contents": [
            {
                "id": f"sku_{i}",
                "name": f"Item {i}",
                "content_type": "product",
                "quantity": 1,
                "amount": 2599,
            }
            for i in range(5)
        ],
    },
}


def build_and_encode() -> str:
    return encode_event(build_event("order_created", now=NOW, **ORDER))  # type: ignore[arg-type]


BUILT = build_event("order_created", now=NOW, **ORDER)  # type: ignore[arg-type]


def encode_only() -> str:
    return json.dumps(BUILT)


def per_call(function: Callable[[], object], rounds: int) -> float:
    # The process's own CPU time: both sides are pure computation in this one thread,
    # and on a machine shared with other work the wall clock would also count the
    # moments this process was made to wait for a core.
    start = time.process_time()
    for _ in range(rounds):
        function()
    return (time.process_time() - start) / rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a short run that only proves the script works",
    )
    args = parser.parse_args()
    # Many short repeats, the two sides taking turns, and their medians.
    repeats, rounds = (3, 500) if args.quick else (150, 500)

    built, baseline = [], []
    for _ in range(repeats):  # interleaved, so drift on the machine hits both sides
        built.append(per_call(build_and_encode, rounds))
        baseline.append(per_call(encode_only, rounds))
    measured, floor = statistics.median(built), statistics.median(baseline)
    print(f"{'':<34}{'µs/event':>10}")
    print(f"{'json.dumps of a built event':<34}{floor * 1e6:>10.1f}")
    print(f"{'build_event + encode_event':<34}{measured * 1e6:>10.1f}")
    print(f"{'ratio':<34}{measured / floor:>10.1f}x")


if __name__ == "__main__":
    main()
