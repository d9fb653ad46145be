"""The reliability run: a backlog drains through faults and killed workers, and nothing
is lost, counted twice, or leaks the API key.

Worker processes (``openai_capi_send --loop``) send to the fake API over loopback. The
fake fails a seeded random share of requests with 503, 500, 429 (with Retry-After),
timeouts (answers that come after the worker's timeout, the events accepted all the
same), dropped and reset connections, and refuses one event per thousand that the
local validator passes. Meanwhile workers are SIGKILLed at random moments and started
again. When nothing is pending or sending any more, the end state is checked exactly.

Bounded by default (2,000 events, for CI); the long form is run by hand::

    CAPI_SOAK_EVENTS=50000 pytest -m soak -s

``CAPI_SOAK_SEED`` replays a run (the seed is printed, and named in every failure).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import random
import secrets
import signal
import subprocess
import sys
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote as urlquote

import pytest
from django.contrib.admin import site
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from django_openai_capi.api import build_event, encode_event
from django_openai_capi.client import post_events
from django_openai_capi.exceptions import TransportError
from django_openai_capi.models import (
    ACCEPTANCE_WINDOW,
    ConversionEvent,
    DeliveryBatch,
    ErrorKind,
)
from django_openai_capi.testing import EventKey, FakeConversionsAPI, RecordedRequest
from tests.outbox import with_payload
from tests.processes import ROOT, worker_env
from tests.testapp.models import Signup

Status = ConversionEvent.Status

pytestmark = [pytest.mark.soak, pytest.mark.django_db(transaction=True)]

EVENTS = int(os.environ.get("CAPI_SOAK_EVENTS", "2000"))
SEED = int(os.environ.get("CAPI_SOAK_SEED") or secrets.randbelow(2**32))
PIXELS = ("test-pixel", "second-pixel")
BATCH_SIZE = 25 if EVENTS <= 5000 else 100
#: Long enough that an unfaulted answer never misses it, even on a loaded machine: a
#: lost answer is then always a "delay" fault's or a killed worker's.
TIMEOUT = 1.0
LEASE_SECONDS = 4
#: Far above what the schedule can cost a good event: with 30% of requests failing,
#: k failed attempts in a row has a chance of 0.3**k, and a kill costs one attempt
#: more. An event failing for good after 100 attempts would be a bug, not bad luck, so
#: the expected end state is exact: every good event sent.
MAX_ATTEMPTS = 100
#: The share of requests answered with each fault.
FAULTS: dict[Any, float] = {
    "auth_backend_failure": 0.06,  # 503
    "server_error": 0.06,  # 500
    "rate_limited": 0.05,  # 429, Retry-After: 1
    "delay": 0.05,  # answered after the worker's timeout; the events were accepted
    "drop": 0.04,  # closed unanswered
    "reset": 0.04,  # TCP RST
}
REJECTED = "Refused in the reliability run: a malformed event, on purpose."
#: A recognisable random core, so that any leak of it, whole or encoded, is found.
KEY_CORE = secrets.token_hex(16)
API_KEY = f"sk-capi-soak-{KEY_CORE}"


def key_forms(key: str) -> dict[str, str]:
    """The key and the encodings of it a leak could take."""
    bearer = f"Bearer {key}"
    return {
        "the key": key,
        "its random core": KEY_CORE,
        "base64": base64.b64encode(key.encode()).decode().rstrip("="),
        "urlsafe base64": base64.urlsafe_b64encode(key.encode()).decode().rstrip("="),
        "the Bearer header": bearer,
        "the Bearer header in base64": base64.b64encode(bearer.encode())
        .decode()
        .rstrip("="),
        "hex": key.encode().hex(),
    }


@dataclass
class Plan:
    """What each event is, so that its end state can be asserted exactly."""

    good: set[str] = field(default_factory=set)
    malformed: set[str] = field(default_factory=set)
    stale: set[str] = field(default_factory=set)


def store_backlog(count: int) -> Plan:
    """*count* built, due events over two pixels, one per thousand malformed and one per
    thousand past its 7-day window; plus one unbuilt model conversion per hundred."""
    plan = Plan()
    now = timezone.now()
    rows = []
    for i in range(count):
        event_id = f"soak-{i}"
        if i % 1000 == 500:
            plan.malformed.add(event_id)
        elif i % 1000 == 250:
            plan.stale.add(event_id)
        else:
            plan.good.add(event_id)
        when = (
            now - ACCEPTANCE_WINDOW - timedelta(hours=1)
            if event_id in plan.stale
            else now - timedelta(minutes=1)
        )
        event = ConversionEvent(
            pixel_id=PIXELS[i % 2],
            event_type="lead_created",
            event_id=event_id,
            event_time=when,
            expires_at=when + ACCEPTANCE_WINDOW,
            source_label=f"soak:{event_id}",
        )
        payload = build_event(
            "lead_created",
            event_id=event_id,
            event_time=when,
            user={"external_id": event_id, "email": f"{i}@example.com"},
            now=int(when.timestamp() * 1000),
        )
        rows.append(with_payload(event, encode_event(payload)))
    ConversionEvent.objects.bulk_create(rows, batch_size=2000)
    for i in range(count // 100):
        with transaction.atomic():
            signup = Signup.objects.create(email=f"signup-{i}@example.com")
        plan.good.add(f"testapp.signup:{signup.pk}")
    assert ConversionEvent.objects.unbuilt().count() == count // 100
    return plan


class Workers:
    """Worker processes with their output in files (a pipe left unread would block)."""

    def __init__(self, endpoint: str, folder: Path) -> None:
        self.env = worker_env(
            endpoint,
            api_key=API_KEY,
            lease_seconds=LEASE_SECONDS,
            timeout=TIMEOUT,
            retry_backoff=0.05,
            retry_backoff_max=0.5,
            max_attempts=MAX_ATTEMPTS,
        )
        self.env["DJANGO_SETTINGS_MODULE"] = "tests.reliability.worker_settings"
        self.folder = folder
        self.started = 0
        self.killed: list[int] = []
        self.killed_mid_batch = 0
        self.running: list[subprocess.Popen[str]] = []
        self.outputs: list[Path] = []
        self.stdout_of: dict[int, Path] = {}

    def start(self) -> subprocess.Popen[str]:
        self.started += 1
        out = self.folder / f"worker-{self.started}.out"
        err = self.folder / f"worker-{self.started}.err"
        self.outputs += [out, err]
        with out.open("w") as stdout, err.open("w") as stderr:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "django",
                    "openai_capi_send",
                    "--skip-checks",
                    "--loop",
                    "--interval",
                    "0.2",
                    "--batch-size",
                    str(BATCH_SIZE),
                ],
                cwd=ROOT,
                env=self.env,
                stdout=stdout,
                stderr=stderr,
                text=True,
            )
        self.running.append(process)
        self.stdout_of[process.pid] = out
        return process

    def kill_one(self, rng: random.Random) -> None:
        victim = self.running.pop(rng.randrange(len(self.running)))
        if ConversionEvent.objects.filter(status=Status.SENDING).exists():
            self.killed_mid_batch += 1
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        self.killed.append(victim.pid)
        self.start()

    def stop(self) -> list[int]:
        # A worker started just now may not have its SIGTERM handler yet.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(
            "Sending due events" in self.stdout_of[process.pid].read_text()
            for process in self.running
        ):
            time.sleep(0.05)
        for process in self.running:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(30) for process in self.running]
        self.running = []
        return codes

    def kill_all(self) -> None:
        for process in self.running:
            process.kill()
            process.wait(10)


def unsettled() -> int:
    return ConversionEvent.objects.filter(
        status__in=[Status.PENDING, Status.SENDING]
    ).count()


@pytest.fixture
def fake(settings: Any) -> Iterator[FakeConversionsAPI]:
    with FakeConversionsAPI(api_key=API_KEY, pixels=PIXELS) as api:
        settings.OPENAI_CAPI_ENDPOINT = api.url
        settings.OPENAI_CAPI_API_KEY = API_KEY
        yield api


def test_a_faulty_backlog_drains_with_nothing_lost_counted_twice_or_leaked(
    fake: FakeConversionsAPI,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    settings: Any,
) -> None:
    print(f"reliability run: CAPI_SOAK_SEED={SEED} CAPI_SOAK_EVENTS={EVENTS}")
    replay = f"(replay with CAPI_SOAK_SEED={SEED} CAPI_SOAK_EVENTS={EVENTS})"
    caplog.set_level(logging.DEBUG)
    rng = random.Random(SEED)
    plan = store_backlog(EVENTS)
    # One of each kind first, so that a short run meets them all; then the draw.
    for kind in rng.sample(sorted(FAULTS), len(FAULTS)):
        fake.fail_next(kind, retry_after=1, seconds=TIMEOUT * 2)
    fake.fail_randomly(FAULTS, seed=SEED, retry_after=1, seconds=TIMEOUT * 2)
    fake.reject_events(plan.malformed, message=REJECTED)

    workers = Workers(fake.url, tmp_path)
    concurrency = 3 if connection.vendor == "postgresql" else 2
    kills = max(4, EVENTS // 2500)
    started = time.monotonic()
    deadline = started + 60 + EVENTS * 0.02
    try:
        for _ in range(concurrency):
            workers.start()
        next_kill = started + rng.uniform(0.5, 2.0)
        while (left := unsettled()) and time.monotonic() < deadline:
            if len(workers.killed) < kills and time.monotonic() >= next_kill:
                workers.kill_one(rng)
                next_kill = time.monotonic() + rng.uniform(0.3, 2.0)
            time.sleep(0.1)
        duration = time.monotonic() - started
        codes = workers.stop()
    finally:
        workers.kill_all()
    fake.fail_randomly(None)
    requests = fake.requests
    counts = Counter(ConversionEvent.objects.values_list("status", flat=True))
    faults = Counter(request.fault for request in requests if request.fault)
    attempts = list(ConversionEvent.objects.values_list("attempts", flat=True))
    print(
        f"{EVENTS + EVENTS // 100} events ({EVENTS // 100} unbuilt at the start), "
        + f"{concurrency} workers, {len(workers.killed)} killed "
        + f"({workers.killed_mid_batch} with a batch in flight), "
        + f"{len(requests)} requests, faults {dict(faults)}, outcomes {dict(counts)}, "
        + f"attempts max {max(attempts)} mean {sum(attempts) / len(attempts):.2f}, "
        + f"{duration:.1f} s"
    )

    assert not left, f"{left} events still unsettled after {duration:.0f} s {replay}"
    assert codes == [0] * concurrency, f"workers exited with {codes} {replay}"
    # Kills stop when the backlog is settled; the first comes within 2 s of the start.
    assert workers.killed, replay
    assert all(faults[kind] for kind in FAULTS), f"{faults} {replay}"

    # Every event ended where it must: sent, failed with the API's reason, or expired.
    by_id = {event.event_id: event for event in ConversionEvent.objects.all()}
    assert {event_id: event.status for event_id, event in by_id.items()} == {
        **dict.fromkeys(plan.good, Status.SENT),
        **dict.fromkeys(plan.malformed, Status.FAILED),
        **dict.fromkeys(plan.stale, Status.EXPIRED),
    }, replay
    for event_id in plan.malformed:
        event = by_id[event_id]
        assert event.last_error_kind == ErrorKind.REJECTED, replay
        assert event.last_http_status == 400, replay
        assert REJECTED in event.last_error, replay
    for event_id in plan.stale:
        event = by_id[event_id]
        assert event.last_error_kind == ErrorKind.EXPIRED, replay
        assert "7-day window" in event.last_error, replay
    assert max(attempts) < MAX_ATTEMPTS, replay

    checked = time.monotonic()
    check_each_conversion_counted_once(fake, requests, by_id, workers, replay)
    scan_for_the_key(workers, caplog, settings, fake, replay)
    print(
        f"checks {checked - started - duration:.1f} s (end state), "
        + f"{time.monotonic() - checked:.1f} s (receipts and key scan)"
    )


def check_each_conversion_counted_once(
    fake: FakeConversionsAPI,
    requests: list[RecordedRequest],
    by_id: dict[str, ConversionEvent],
    workers: Workers,
    replay: str,
) -> None:
    """The fake holds exactly the sent events; each copy beyond the first is explained.

    A conversion reaches the API more than once only when the answer to a request that
    carried it never got recorded: the request timed out after the API accepted it, or
    its worker was killed before it wrote the outcome. The resend carries the same id
    (and the same bytes), so the API keeps one. Anything else, such as two live workers
    both sending an event, fails here.
    """
    sent = {
        (event.pixel_id, event.event_type, event.event_id): event
        for event in by_id.values()
        if event.status == Status.SENT
    }
    assert set(fake.accepted) == set(sent), replay
    for key, accepted in fake.accepted.items():
        # What the API kept is byte for byte what is stored: a resend is no new event.
        assert accepted == json.loads(sent[key].payload or ""), replay

    recorded = {
        batch.request_id: batch
        for batch in DeliveryBatch.objects.filter(
            outcome=DeliveryBatch.Outcome.ACCEPTED
        )
    }
    accepted_requests = [r for r in requests if r.status == 200]
    assert set(recorded) <= {r.request_id for r in accepted_requests}, replay
    killed = {str(pid) for pid in workers.killed}
    carriers: dict[tuple[str, str], list[RecordedRequest]] = defaultdict(list)
    for request in accepted_requests:
        for event_id in request.event_ids:
            carriers[request.pixel or "", event_id].append(request)
    lost: set[str] = set()
    for (pixel, event_type, event_id), event in sent.items():
        copies = carriers[pixel, event_id]
        assert fake.receipts[EventKey(pixel, event_type, event_id)] == len(copies), (
            replay
        )
        final = [
            r
            for r in copies
            if r.request_id in recorded
            and recorded[r.request_id].claim_id == event.claim_id
        ]
        seen = [(r.request_id, r.fault) for r in copies]
        assert len(final) == 1, f"{event_id}: {seen} {replay}"
        for request in copies:
            if request is final[0]:
                continue
            batch = recorded.get(request.request_id)
            by_killed = batch is not None and batch.worker.rsplit(":", 1)[1] in killed
            assert request.fault == "delay" or batch is None or by_killed, (
                f"{event_id} was accepted twice with both answers recorded: "
                + f"{seen} {replay}"
            )
            if request.fault != "delay":
                lost.add(request.request_id)
    # A kill loses at most one answer: that of its worker's request in flight (or
    # being recorded); a worker sends one batch at a time.
    assert len(lost) <= len(workers.killed), f"{lost} {replay}"
    known = set(by_id)
    assert all(set(r.event_ids) <= known for r in requests), replay


def scan_for_the_key(
    workers: Workers,
    caplog: pytest.LogCaptureFixture,
    settings: Any,
    fake: FakeConversionsAPI,
    replay: str,
) -> None:
    """The key is in no log line, output, exception, table or admin page of the run."""
    texts: list[tuple[str, str]] = []
    for path in workers.outputs:
        texts.append((path.name, path.read_text()))
    assert any("Sending" in text for name, text in texts if name.endswith(".err")), (
        "the workers logged nothing: the scan would prove nothing"
    )
    texts.extend(exception_texts(fake, settings))
    texts.extend(table_texts())
    texts.extend(admin_pages())
    texts.append(("the test's log", caplog.text))
    texts.extend(
        (f"log record {record.name}", repr(record.args)) for record in caplog.records
    )
    print(
        f"key scan: {len(texts)} texts, "
        + f"{sum(1 for where, _ in texts if where.startswith('table '))} tables, "
        + f"{sum(1 for where, _ in texts if where.startswith('/'))} admin pages, "
        + f"{len(caplog.records)} log records of the test, "
        + f"{len(workers.outputs)} worker outputs"
    )
    leaks = [
        f"{form} in {where}"
        for where, text in texts
        for form, value in key_forms(API_KEY).items()
        if value in text
    ]
    assert not leaks, f"the API key leaked: {leaks} {replay}"


def exception_texts(
    fake: FakeConversionsAPI, settings: Any
) -> Iterator[tuple[str, str]]:
    """What the client raises for each way a request can get no answer."""
    settings.OPENAI_CAPI_TIMEOUT = TIMEOUT
    body = b'{"events":[],"validate_only":true}'
    for kind in ("drop", "reset", "delay"):
        fake.fail_next(kind, seconds=TIMEOUT * 2)
        with pytest.raises(TransportError) as caught:
            post_events(PIXELS[0], body)
        exc = caught.value
        yield f"{kind} exception", "".join(traceback.format_exception(exc)) + repr(exc)


def table_texts() -> Iterator[tuple[str, str]]:
    """Every row of every table in the database, as text."""
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            rows = cursor.fetchall()
            yield f"table {table}", "\n".join(map(row_text, rows))


def row_text(row: tuple[object, ...]) -> str:
    return "\t".join(
        bytes(value).decode("latin-1")
        if isinstance(value, bytes | memoryview)
        else str(value)
        for value in row
    )


#: Change pages rendered per model: the first rows with an error, and the first rows.
CHANGE_PAGES_PER_MODEL = 40


def admin_urls() -> Iterator[str]:
    """The changelist and change pages of every model the app registers in the admin.

    Models added to the admin later are scanned without touching this test.
    """
    for model in site._registry:
        opts = model._meta
        if opts.app_label != "django_openai_capi":
            continue
        name = f"admin:{opts.app_label}_{opts.model_name}"
        changelist = reverse(f"{name}_changelist")
        yield changelist
        if opts.proxy:
            # A page of its own under the admin (the delivery status), not a list.
            continue
        for field_name in ("status", "outcome", "last_error_kind", "reason"):
            if field_name in {f.name for f in opts.get_fields()}:
                for value in model._default_manager.values_list(
                    field_name, flat=True
                ).distinct():
                    yield f"{changelist}?{field_name}__exact={urlquote(str(value))}"
        rows = model._default_manager.order_by("pk")
        with_errors = [
            column
            for column in ("last_error", "error")
            if column in {f.name for f in opts.get_fields()}
        ]
        picked = list(
            rows.exclude(**{with_errors[0]: ""}).values_list("pk", flat=True)[
                :CHANGE_PAGES_PER_MODEL
            ]
            if with_errors
            else []
        )
        picked += list(rows.values_list("pk", flat=True)[:CHANGE_PAGES_PER_MODEL])
        for pk in dict.fromkeys(picked):
            yield reverse(f"{name}_change", args=[quote(pk)])


def admin_pages() -> Iterator[tuple[str, str]]:
    admin_user = get_user_model().objects.create_superuser(
        "soak-admin", "admin@example.com", "unused-password"
    )
    client = Client()
    client.force_login(admin_user)
    rendered = 0
    for url in admin_urls():
        response = client.get(url)
        assert response.status_code == 200, url
        rendered += 1
        yield url, response.content.decode()
    assert rendered >= 6
