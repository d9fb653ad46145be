"""Several worker processes at once, as `send_conversions` workers would hit the fake."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from django_openai_capi.testing import EventKey, FakeConversionsAPI

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 4
BATCHES = 5
PER_BATCH = 1000

# Each worker sends its own events in 1,000-event batches over one keep-alive session,
# then resends its first batch (a retry after a lost answer).
WORKER = """
import json, sys, time
import requests

url, worker, per_batch, batch_count = sys.argv[1], *map(int, sys.argv[2:])
now = int(time.time() * 1000)

def event(i):
    return {
        "id": f"w{worker}-{i}",
        "type": "order_created",
        "timestamp_ms": now,
        "action_source": "web",
        "source_url": "https://shop.example.com/checkout",
        "user": {"emails_sha256": ["a" * 64], "ip_address": "203.0.113.7"},
        "data": {"type": "contents", "amount": 2599, "currency": "USD",
                 "contents": [{"id": "sku-1", "quantity": 1}]},
    }

batches = [[event(b * per_batch + i) for i in range(per_batch)] for b in range(batch_count)]
statuses = []
with requests.Session() as session:
    for events in batches + batches[:1]:
        response = session.post(url, params={"pid": "test-pixel"}, json={"events": events},
                                headers={"Authorization": "Bearer test-key"}, timeout=60)
        statuses.append(response.status_code)
print(json.dumps(statuses))
"""


def test_four_worker_processes_deliver_20000_events():
    with FakeConversionsAPI() as fake:
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", WORKER, fake.url]
                + [str(worker), str(PER_BATCH), str(BATCHES)],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for worker in range(WORKERS)
        ]
        outputs = [process.communicate(timeout=120) for process in processes]

    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
        assert out.strip() == "[" + ", ".join(["200"] * (BATCHES + 1)) + "]"
    accepted = fake.accepted
    assert len(accepted) == WORKERS * BATCHES * PER_BATCH
    assert len(fake.requests) == WORKERS * (BATCHES + 1)
    receipts = fake.receipts
    assert receipts[EventKey("test-pixel", "order_created", "w3-0")] == 2
    assert receipts[EventKey("test-pixel", "order_created", "w3-1000")] == 1
    assert sum(receipts.values()) == WORKERS * (BATCHES + 1) * PER_BATCH
