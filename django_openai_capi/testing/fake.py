"""The fake Conversions API itself, independent of how requests reach it."""

from __future__ import annotations

import hashlib
import json
import math
import random
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, NamedTuple, Self
from urllib.parse import parse_qs, urlsplit

from django_openai_capi.testing import errors, rules
from django_openai_capi.testing.errors import FaultKind
from django_openai_capi.testing.wire import PATH, FakeResponse, Reset

if TYPE_CHECKING:
    from responses import RequestsMock

    from django_openai_capi.testing.server import FakeServer

DEFAULT_MOCK_URL: Final = "https://bzr.openai.com/v1/events"


class EventKey(NamedTuple):
    """What the API deduplicates on: pixel, event name (or custom name), event id."""

    pixel: str
    name: str
    id: str


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    pixel: str | None
    #: ``FakeConversionsAPI.fingerprint(key)`` of the bearer key; never the key itself.
    key_fingerprint: str | None
    raw_body: bytes
    event_count: int
    event_ids: tuple[str, ...]
    validate_only: bool
    #: ``None`` when the connection was dropped without an answer.
    status: int | None
    request_id: str
    fault: str | None

    @property
    def body(self) -> Any:
        """The JSON body, parsed on each access; ``None`` when it was not JSON."""
        return _parse(self.raw_body)


@dataclass(frozen=True, slots=True)
class _Key:
    scoped: bool
    pixels: frozenset[str] | None


@dataclass(frozen=True, slots=True)
class _Fault:
    kind: str
    retry_after: int
    seconds: float
    #: For :meth:`FakeConversionsAPI.answer_every_request`: the answer to give as it is.
    canned: FakeResponse | None = None


@dataclass(frozen=True, slots=True)
class _Rejection:
    match: Callable[[Mapping[str, Any]], bool]
    message: str
    code: str
    status: int


class _Answer(NamedTuple):
    status: int
    body: dict[str, Any]
    accepted: list[EventKey] | None = None


class AcceptedEvents(Mapping[EventKey, dict[str, Any]]):
    """A snapshot of the accepted events, each batch decoded when first read."""

    def __init__(self, entries: dict[EventKey, tuple[bytes, int]]) -> None:
        self._entries = entries
        self._batches: dict[int, list[Any]] = {}

    def __getitem__(self, key: EventKey) -> dict[str, Any]:
        raw, index = self._entries[key]
        if id(raw) not in self._batches:
            self._batches[id(raw)] = json.loads(raw)["events"]
        event: dict[str, Any] = self._batches[id(raw)][index]
        return event

    def __iter__(self) -> Iterator[EventKey]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"AcceptedEvents({dict(self)!r})"


class FakeConversionsAPI:
    """A fake of ``POST /v1/events?pid=...``, for tests.

    Serve it over HTTP with :meth:`start` (or ``with``) and point the
    ``OPENAI_CAPI_ENDPOINT`` setting at :attr:`url`, or plug it into ``responses`` with
    :meth:`mock`. Both go through :meth:`handle`.
    """

    def __init__(
        self,
        api_key: str | None = "test-key",
        pixels: Iterable[str] = ("test-pixel",),
        *,
        unscoped_keys: Iterable[str] = (),
        latency: float = 0.0,
        clock: Callable[[], float] = time.time,
        on_request: Callable[[RecordedRequest], None] | None = None,
    ) -> None:
        self.latency = latency
        self._clock = clock
        self._on_request = on_request
        self._lock = threading.Lock()
        self._keys: dict[str, _Key] = {}
        self._pixels = set(pixels)
        self._faults: deque[_Fault] = deque()
        self._outage: _Fault | None = None
        self._random_faults: _RandomFaults | None = None
        self._rejection: _Rejection | None = None
        self._requests: list[RecordedRequest] = []
        # Accepted events are kept as (request body, index), not parsed: a test run
        # holding 100,000 parsed events spends more time in the garbage collector
        # than in the fake.
        self._accepted: dict[EventKey, tuple[bytes, int]] = {}
        self._receipts: Counter[EventKey] = Counter()
        self._server: FakeServer | None = None
        if api_key is not None:
            self.add_key(api_key)
        for key in unscoped_keys:
            self.add_key(key, scoped=False)

    # Configuration

    def add_key(
        self, key: str, *, scoped: bool = True, pixels: Iterable[str] | None = None
    ) -> None:
        """Accept ``key``; without the scope it gets 401 "Missing scopes".

        With ``pixels``, the key is refused (403 unknown pid) for any other pixel.
        """
        with self._lock:
            self._keys[key] = _Key(
                scoped, None if pixels is None else frozenset(pixels)
            )

    def revoke_key(self, key: str) -> None:
        with self._lock:
            self._keys.pop(key, None)

    def add_pixel(self, pixel: str) -> None:
        with self._lock:
            self._pixels.add(pixel)

    @staticmethod
    def fingerprint(key: str) -> str:
        """How a recorded request names the key it carried."""
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    # Scripted behaviour

    def fail_next(
        self,
        kind: FaultKind | int,
        times: int = 1,
        *,
        retry_after: int = 1,
        seconds: float = 1.0,
    ) -> None:
        """Answer the next ``times`` requests with ``kind`` instead of normally.

        ``rate_limited`` sends ``Retry-After: retry_after``. ``delay`` waits ``seconds``
        before answering, after processing (a client that timed out may have had its
        events accepted, as with the real API); ``drop`` closes the connection without
        processing, and ``reset`` resets it (TCP RST). Under :meth:`mock`, ``delay``
        raises ``requests.ReadTimeout``, ``drop`` and ``reset`` raise
        ``requests.ConnectionError``.

        ``kind`` may also be an HTTP status from 400 to 599: the answer is the API's
        error envelope with the message ``"<status>: <reason>"`` (``Retry-After`` on a
        429), for a status no named fault gives, such as 504.
        """
        fault = _fault(kind, retry_after, seconds)
        with self._lock:
            self._faults.extend([fault] * times)

    def outage(
        self,
        kind: FaultKind | int | None,
        *,
        retry_after: int = 1,
        seconds: float = 1.0,
    ) -> None:
        """Answer every request with ``kind`` until ``outage(None)``; after ``fail_next``.

        ``kind`` is a fault or an HTTP status, as for :meth:`fail_next`.
        """
        fault = None if kind is None else _fault(kind, retry_after, seconds)
        with self._lock:
            self._outage = fault

    def answer_every_request(
        self,
        status: int | None,
        body: Mapping[str, Any] | bytes = b"",
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer every request with *status* and *body*, until ``answer_every_request(None)``.

        For answers the API should not give, but might: a 400 that blames
        ``events[5000]`` whatever the request carried, a proxy's page. A mapping is sent
        as JSON, bytes as they are. It takes the place of an :meth:`outage`;
        :meth:`fail_next` still comes first.
        """
        fault = None
        if status is not None:
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            canned = FakeResponse(status, dict(headers or {}), raw)
            fault = _Fault("answer", retry_after=0, seconds=0.0, canned=canned)
        with self._lock:
            self._outage = fault

    def fail_randomly(
        self,
        weights: Mapping[FaultKind | int, float] | None,
        *,
        seed: int | None = None,
        retry_after: int = 1,
        seconds: float = 1.0,
    ) -> None:
        """Answer each request with a fault drawn at random, by ``weights``.

        ``weights`` maps fault kinds to the chance of each per request (their sum, at
        most 1, is the share of requests that fail; the rest are answered normally),
        e.g. ``{"server_error": 0.1, "drop": 0.05, 504: 0.05}``. The draws come from a
        ``random.Random(seed)``, so a seed replays the same sequence of faults request
        by request. Faults from :meth:`fail_next` come first; an :meth:`outage` covers
        the requests the draw leaves unfaulted. ``None`` stops it.
        """
        schedule = None
        if weights is not None:
            faults = [
                (_fault(kind, retry_after, seconds), float(chance))
                for kind, chance in weights.items()
            ]
            total = math.fsum(chance for _, chance in faults)
            if any(chance < 0 for _, chance in faults) or over_one(total):
                raise ValueError(
                    "Fault weights are chances per request: each at least 0, their "
                    + f"sum at most 1 (got {total:g})."
                )
            schedule = _RandomFaults(random.Random(seed), faults)
        with self._lock:
            self._random_faults = schedule

    def reject_events(
        self,
        match: Callable[[Mapping[str, Any]], bool] | Collection[str] | None,
        *,
        message: str = "Rejected by the fake Conversions API.",
        code: str = "invalid_event",
        status: int = 400,
    ) -> None:
        """Make events invalid: those ``match`` is true for, or whose id is in ``match``.

        A batch holding one is refused like any invalid batch, pointing at the first.
        ``None`` stops rejecting.
        """
        rejection = None
        if callable(match):
            rejection = _Rejection(match, message, code, status)
        elif match is not None:
            ids = frozenset([match] if isinstance(match, str) else match)
            rejection = _Rejection(
                lambda event: event.get("id") in ids, message, code, status
            )
        with self._lock:
            self._rejection = rejection

    def clear_faults(self) -> None:
        """Answer normally again: forget faults, outage, random faults and rejections.

        What was seen and accepted is kept, so a resent event is deduplicated as by
        the real API.
        """
        with self._lock:
            self._clear_faults()

    def _clear_faults(self) -> None:
        self._faults.clear()
        self._outage = None
        self._random_faults = None
        self._rejection = None

    def reset(self) -> None:
        """Forget requests, accepted events, faults, outage and rejections; keep keys and pixels."""
        with self._lock:
            self._clear_faults()
            self._requests.clear()
            self._accepted.clear()
            self._receipts.clear()

    # What it saw

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def accepted(self) -> AcceptedEvents:
        """Accepted events, deduplicated: the first event received for a key wins."""
        with self._lock:
            return AcceptedEvents(dict(self._accepted))

    @property
    def receipts(self) -> Counter[EventKey]:
        """How many times each key arrived in an accepted, not validate-only, request."""
        with self._lock:
            return self._receipts.copy()

    def accepted_ids(self, pixel: str | None = None) -> list[str]:
        with self._lock:
            return [
                key.id for key in self._accepted if pixel is None or key.pixel == pixel
            ]

    # Transports

    def start(
        self, host: str = "127.0.0.1", port: int = 0, *, verbose: bool = False
    ) -> Self:
        """Serve over HTTP in a daemon thread; port 0 picks a free port."""
        from django_openai_capi.testing.server import FakeServer

        if self._server is not None:
            raise RuntimeError("The fake Conversions API is already running.")
        self._server = FakeServer(self, host, port, verbose=verbose)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> Self:
        # Also allows ``with fake.start(port=8799):``.
        return self if self._server is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The endpoint to set as ``OPENAI_CAPI_ENDPOINT`` (the client adds ``?pid=``)."""
        if self._server is None:
            raise RuntimeError("The fake Conversions API is not running: call start().")
        return self._server.url

    def mock(self, rsps: RequestsMock, url: str = DEFAULT_MOCK_URL) -> None:
        """Answer POSTs to ``url`` (any query string) in ``rsps``, without a socket."""
        from django_openai_capi.testing.mocking import register

        register(self, rsps, url)

    # The core

    def handle(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> FakeResponse | None:
        """Answer one request; ``None`` means: close the connection, answer nothing.

        (Over HTTP, a ``reset`` fault resets the connection instead of closing it.)
        """
        answer = self.serve(method, url, headers, body)
        return None if isinstance(answer, Reset) else answer

    def serve(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> FakeResponse | Reset | None:
        """:meth:`handle` for the transports, telling a reset from a drop."""
        request_id = "req_" + secrets.token_hex(16)
        parts = urlsplit(url)
        pids = parse_qs(parts.query, keep_blank_values=True).get("pid")
        pixel = pids[0] if pids else None
        key = _bearer(headers)
        payload = _parse(body)
        with self._lock:
            if self._faults:
                fault: _Fault | None = self._faults.popleft()
            else:
                schedule = self._random_faults
                drawn = None if schedule is None else schedule.draw()
                fault = self._outage if drawn is None else drawn
            known_key = None if key is None else self._keys.get(key)
            pixel_known = pixel in self._pixels
            rejection = self._rejection

        response: FakeResponse | Reset | None = None
        answer: _Answer | None = None
        if fault is None or fault.kind == "delay":
            answer = self._answer(
                method, parts.path, known_key, pixel, pixel_known, payload, rejection
            )
            response = _response(request_id, answer.status, answer.body)
            if fault is not None:
                response = FakeResponse(
                    response.status, response.headers, response.body, fault.seconds
                )
        elif fault.kind == "reset":
            response = Reset()
        elif fault.kind != "drop":
            response = _fault_response(request_id, fault)

        events = payload.get("events") if isinstance(payload, dict) else None
        events = events if isinstance(events, list) else []
        record = RecordedRequest(
            method=method,
            path=parts.path,
            pixel=pixel,
            key_fingerprint=None if key is None else self.fingerprint(key),
            raw_body=body,
            event_count=len(events),
            event_ids=tuple(
                event["id"]
                for event in events
                if isinstance(event, dict) and isinstance(event.get("id"), str)
            ),
            validate_only=isinstance(payload, dict)
            and payload.get("validate_only") is True,
            status=response.status if isinstance(response, FakeResponse) else None,
            request_id=request_id,
            fault=None if fault is None else fault.kind,
        )
        with self._lock:
            self._requests.append(record)
            if answer is not None and answer.accepted is not None:
                self._receipts.update(answer.accepted)
                for index, event_key in enumerate(answer.accepted):
                    self._accepted.setdefault(event_key, (body, index))
        if self._on_request is not None:
            self._on_request(record)
        if self.latency:
            time.sleep(self.latency)
        return response

    def _answer(
        self,
        method: str,
        path: str,
        key: _Key | None,
        pixel: str | None,
        pixel_known: bool,
        payload: object,
        rejection: _Rejection | None,
    ) -> _Answer:
        # The real API's order, as far as it shows: the key, then pid, then the body.
        if path != PATH:
            return _Answer(404, errors.envelope("Not found"))
        if method != "POST":
            return _Answer(405, errors.envelope("Method Not Allowed"))
        if key is None:
            return _Answer(401, errors.envelope(errors.UNAUTHORIZED))
        if not key.scoped:
            return _Answer(401, errors.envelope(errors.MISSING_SCOPE))
        if pixel is None:
            return _Answer(400, errors.envelope(errors.MISSING_PID))
        if not pixel_known or (key.pixels is not None and pixel not in key.pixels):
            return _Answer(
                403, errors.envelope(errors.UNKNOWN_PID, type="server_error")
            )
        if not isinstance(payload, dict) or "events" not in payload:
            return _Answer(400, errors.envelope(errors.MISSING_EVENTS))
        problem = rules.check_request(payload)
        if problem is not None:
            return _Answer(
                400,
                errors.envelope(
                    problem.message, param=problem.param, code=problem.code
                ),
            )
        return self._check_events(pixel, payload, rejection)

    def _check_events(
        self, pixel: str, payload: dict[str, Any], rejection: _Rejection | None
    ) -> _Answer:
        events: list[Any] = payload["events"]
        now_ms = int(self._clock() * 1000)
        # Shape errors are reported before time-window errors, as a schema check
        # would come before the business rules.
        out_of_window: rules.Problem | None = None
        for index, event in enumerate(events):
            at = f"events[{index}]"
            problems = rules.check_event(event, at)
            if not problems and rejection is not None and rejection.match(event):
                return _Answer(
                    rejection.status,
                    _invalid_event(
                        at, [rules.Problem(at, rejection.code, rejection.message)]
                    ),
                )
            if problems:
                return _Answer(400, _invalid_event(at, problems))
            if out_of_window is None:
                out_of_window = rules.check_window(event, at, now_ms)
        if out_of_window is not None:
            param, code, message = out_of_window
            return _Answer(
                422,
                errors.envelope(
                    message,
                    param=param,
                    code=code,
                    errors=[{"message": message, "param": param, "code": code}],
                ),
            )
        validate_only = payload.get("validate_only") is True
        # The real success body is undocumented; this one only has to be useful.
        body = {"accepted_events": len(events), "validate_only": validate_only}
        if validate_only:
            return _Answer(200, body)
        return _Answer(200, body, [_event_key(pixel, event) for event in events])


@dataclass(slots=True)
class _RandomFaults:
    rng: random.Random
    faults: list[tuple[_Fault, float]]

    def draw(self) -> _Fault | None:
        point = self.rng.random()
        for fault, chance in self.faults:
            if point < chance:
                return fault
            point -= chance
        return None


def over_one(total: float) -> bool:
    """Whether chances that sum to *total* are more than certainty.

    Within rounding: 0.34 + 0.56 + 0.1 is 1.0000000000000002 in floats, and refusing
    it as "more than 1" would contradict the person who wrote three chances summing
    to 1.
    """
    return total > 1 and not math.isclose(total, 1)


def _fault(kind: str | int, retry_after: int, seconds: float) -> _Fault:
    if isinstance(kind, int):
        return _status_fault(kind, retry_after)
    if kind not in errors.FAULT_KINDS:
        raise ValueError(
            f"Unknown fault {kind!r}; use one of {', '.join(sorted(errors.FAULT_KINDS))}."
        )
    return _Fault(kind, retry_after, seconds)


def _status_fault(status: int, retry_after: int) -> _Fault:
    # bool is an int: fail_next(True) is a mistake, not a status.
    if isinstance(status, bool) or not 400 <= status <= 599:
        raise ValueError(
            f"A fault's HTTP status must be from 400 to 599, not {status!r}."
        )
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    # Worded as the API words its own: "503: Authentication backend failure".
    body = errors.envelope(
        f"{status}: {reason}",
        type="server_error" if status >= 500 else "invalid_request_error",
    )
    headers = {
        "Content-Type": "application/json",
        "openai-version": errors.OPENAI_VERSION,
    }
    if status == 429:
        headers["Retry-After"] = str(retry_after)
    canned = FakeResponse(status, headers, json.dumps(body).encode())
    return _Fault("status", retry_after, 0.0, canned=canned)


def _bearer(headers: Mapping[str, str]) -> str | None:
    for name, value in headers.items():
        if name.lower() == "authorization":
            scheme, _, credentials = value.strip().partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
    return None


def _parse(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def _event_key(pixel: str, event: dict[str, Any]) -> EventKey:
    # The API lowercases custom event names, so "Quote" and "quote" are one key.
    if event["type"] == "custom":
        return EventKey(pixel, event["custom_event_name"].lower(), event["id"])
    return EventKey(pixel, event["type"], event["id"])


def _invalid_event(at: str, problems: list[rules.Problem]) -> dict[str, Any]:
    return errors.envelope(
        f"Invalid event at {at}. See errors for details.",
        param=at,
        code="invalid_event",
        errors=[
            {"message": message, "param": param, "code": code}
            for param, code, message in problems
        ],
    )


def _response(
    request_id: str,
    status: int,
    body: dict[str, Any],
    extra_headers: Mapping[str, str] | None = None,
) -> FakeResponse:
    headers = {
        "Content-Type": "application/json",
        "x-request-id": request_id,
        "openai-version": errors.OPENAI_VERSION,
    }
    if extra_headers:
        headers.update(extra_headers)
    return FakeResponse(status, headers, json.dumps(body).encode())


def _fault_response(request_id: str, fault: _Fault) -> FakeResponse:
    if fault.canned is not None:
        headers = {"x-request-id": request_id, **fault.canned.headers}
        return FakeResponse(fault.canned.status, headers, fault.canned.body)
    status, message, error_type = errors.FAULT_ANSWERS[fault.kind]
    extra = {"Retry-After": str(fault.retry_after)} if status == 429 else None
    return _response(
        request_id, status, errors.envelope(message, type=error_type), extra
    )
