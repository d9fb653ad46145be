"""The HTTP client: one POST per batch, and nothing else.

It answers with what came back (any status) or raises :class:`TransportError` when
nothing did; deciding what a status means is delivery's job. The API key goes into the
``Authorization`` header and nowhere else: error texts built here never include the
request's headers, and everything that leaves this module is redacted.

Every request goes through :func:`post_events` (the worker, ``validate_only`` runs,
``openai_capi_verify``), so the limits that protect the app from a server live here:

* ``OPENAI_CAPI_TIMEOUT`` bounds the *whole* request, not each socket read. A server
  that drips its answer a byte at a time would otherwise hold a batch past its lease,
  and another worker would send it again.
* At most :data:`BODY_LIMIT` bytes of a body are read, whatever its length says.
* A 2xx is a 2xx once its status line has come, however its body ends: sending its
  events again because the body dripped past the deadline would duplicate them.
* The ``x-request-id`` is text from outside: it is cleaned before anything stores,
  logs or shows it.
"""

from __future__ import annotations

import contextlib
import math
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from importlib.metadata import PackageNotFoundError, version
from types import TracebackType
from typing import Any, Self

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import PoolManager

from django_openai_capi.api.identifiers import REQUEST_ID_MAX_LENGTH
from django_openai_capi.conf import conf, request_deadline
from django_openai_capi.exceptions import TransportError
from django_openai_capi.redaction import describe_exception, redact

#: How much of a response body is read, and kept for errors and the DeliveryBatch row.
BODY_LIMIT = 64 * 1024
#: Bytes asked of the socket per read while reading a body.
_CHUNK = 16 * 1024


def _user_agent() -> str:
    try:
        ours = version("django-openai-capi")
    except PackageNotFoundError:  # pragma: no cover - only in an uninstalled checkout
        ours = "unknown"
    return f"django-openai-capi/{ours} python-requests/{requests.__version__}"


USER_AGENT = _user_agent()


@dataclass(frozen=True, slots=True)
class ApiResponse:
    """An HTTP answer from the API, whatever its status."""

    status: int
    #: The first :data:`BODY_LIMIT` bytes of the body; the rest was never read.
    body: bytes
    #: ``x-request-id``, cleaned (:func:`clean_request_id`): what OpenAI support asks
    #: for to trace a request.
    request_id: str
    #: ``Retry-After`` in seconds, when the answer carried a usable one.
    retry_after: float | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


_local = threading.local()


def session() -> requests.Session:
    """This thread's pooled session: connections are reused from batch to batch.

    One per thread because ``requests.Session`` is not documented as thread-safe.
    """
    current: requests.Session | None = getattr(_local, "session", None)
    if current is None:
        current = requests.Session()
        current.headers["User-Agent"] = USER_AGENT
        adapter = _WatchedAdapter()
        current.mount("https://", adapter)
        current.mount("http://", adapter)
        _local.session = current
    return current


def post_events(pixel_id: str, body: bytes) -> ApiResponse:
    """POST *body* to the events endpoint for *pixel_id*.

    Raises :class:`CapiConfigurationError` when the pixel has no key, and
    :class:`TransportError` when no complete response came back in time.
    """
    key = conf.api_key_for(pixel_id)
    started = time.monotonic()
    timeout = conf.OPENAI_CAPI_TIMEOUT
    with Deadline(request_deadline(timeout), started=started) as deadline:
        try:
            response = session().post(
                conf.OPENAI_CAPI_ENDPOINT,
                params={"pid": pixel_id},
                data=body,
                headers={
                    "Authorization": f"Bearer {key}",
                    "Content-Type": "application/json",
                    # The body is read as it comes, and only BODY_LIMIT of it: a
                    # compressed one could not be cut there (nor be small after it).
                    "Accept-Encoding": "identity",
                },
                timeout=timeout,
                allow_redirects=False,
                stream=True,
            )
            try:
                content = read_body(response, deadline)
            finally:
                # A body cut short closes its connection rather than go back to the
                # pool half-read; a body read to its end went back already.
                response.close()
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            raise TransportError(
                deadline.why(exc), duration_ms=deadline.elapsed_ms()
            ) from None
    return ApiResponse(
        status=response.status_code,
        body=content,
        request_id=clean_request_id(response.headers.get("x-request-id", "")),
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
        duration_ms=deadline.elapsed_ms(),
    )


def read_body(response: requests.Response, deadline: Deadline) -> bytes:
    """The first :data:`BODY_LIMIT` bytes of *response*'s body; never more is read.

    One byte past the limit is asked for, to tell a body cut short from one that fits.
    The body of a 2xx cut by the deadline or broken off by the server is kept as far
    as it came: the status line already said the API took the events, and no answer
    would send them again. Any other answer's body is what delivery acts on (which
    event was refused), so its cut is a failure.
    """
    kept = bytearray()
    try:
        while len(kept) <= BODY_LIMIT:
            deadline.check()
            wanted = min(_CHUNK, BODY_LIMIT + 1 - len(kept))
            chunk: bytes = response.raw.read(wanted, decode_content=False)
            if not chunk:
                break
            kept += chunk
    except (TransportError, urllib3.exceptions.HTTPError):
        if not 200 <= response.status_code < 300:
            raise
    return bytes(kept[:BODY_LIMIT])


def clean_request_id(value: str) -> str:
    """*value*, an ``x-request-id`` from outside, as it may be stored, logged and shown.

    Unprintable characters are removed (PostgreSQL cannot store a NUL, and a control
    character in a log line or a terminal can rewrite what surrounds it), the key is
    redacted (a server may echo it anywhere) and the length capped to the columns'.
    Removal comes first, so that a key split by control characters is still found.
    """
    printable = "".join(char for char in value if char.isprintable()).strip()
    return redact(printable, limit=REQUEST_ID_MAX_LENGTH)


class Deadline:
    """The time a whole request may take, enforced by a watchdog.

    Socket timeouts bound each wait for a byte, not the request: a server sending one
    byte per second never trips them. When the deadline passes, the watchdog shuts the
    request's connection down, which ends whatever read or write is blocked on it at
    once, and no step starts after it (:meth:`watch`, :meth:`check`).

    Two waits happen before the connection has a socket to shut down, so they are
    bounded instead by what is left when connecting starts: the TCP connect (its
    timeout), and the TLS handshake (CPython bounds a handshake as a whole by the
    socket's timeout). Name resolution escapes both: ``getaddrinfo`` cannot be
    interrupted, and the request ends as soon as it returns.
    """

    def __init__(self, seconds: float, *, started: float) -> None:
        self.seconds = seconds
        #: ``time.monotonic()`` when the request started.
        self.started = started
        self.expired = False
        self._connection: HTTPConnection | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(self.remaining(), self._expire)
        self._timer.daemon = True

    def __enter__(self) -> Self:
        _local.deadline = self
        self._timer.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        _local.deadline = None
        with self._lock:
            # Past this point the connection may be back in the pool, serving the
            # next request: the watchdog must not touch it any more.
            self._connection = None
            self._timer.cancel()

    def remaining(self) -> float:
        return max(0.0, self.seconds - (time.monotonic() - self.started))

    def elapsed_ms(self) -> int:
        return round((time.monotonic() - self.started) * 1000)

    def watch(self, connection: HTTPConnection) -> None:
        """Have the watchdog shut *connection* down at the deadline (or now, if past)."""
        with self._lock:
            self._connection = connection
            expired = self.expired
        if expired:
            # An OSError, so that urllib3 and requests report it as the transport
            # failure it is; post_events then says why.
            raise TimeoutError(self.explain())

    def passed(self) -> bool:
        return self.expired or self.remaining() <= 0

    def check(self) -> None:
        """Stop the request here if its time is up."""
        if self.passed():
            raise TransportError(self.explain(), duration_ms=self.elapsed_ms())

    def why(self, exc: BaseException) -> str:
        """What to report for *exc*: the deadline when it is what ended the request."""
        return self.explain() if self.passed() else describe_exception(exc)

    def explain(self) -> str:
        return (
            f"no complete answer within {self.seconds:g} s, the time "
            + "OPENAI_CAPI_TIMEOUT allows a whole request (connect, send, read); the "
            + "request was cut. Raise OPENAI_CAPI_TIMEOUT if the API is this slow, or "
            + "check the network between this machine and the endpoint."
        )

    def _expire(self) -> None:
        # Under the lock: once __exit__ has run, the connection may serve another
        # request from the pool.
        with self._lock:
            self.expired = True
            sock = None if self._connection is None else self._connection.sock
            if isinstance(sock, socket.socket):
                # The plain socket's shutdown even for TLS: SSLSocket.shutdown would
                # also drop the TLS state under the thread reading from it.
                with contextlib.suppress(OSError):  # already closed: nothing to cut
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _watch(connection: HTTPConnection) -> None:
    deadline: Deadline | None = getattr(_local, "deadline", None)
    if deadline is not None:
        deadline.watch(connection)
        # Connecting cannot be cut before its socket exists: bound it by what is
        # left instead, so that it cannot outlast the deadline. (None: no bound.)
        connection.timeout = min(connection.timeout or math.inf, deadline.remaining())


class _WatchedConnection(HTTPConnection):
    """Reports itself to this thread's deadline before it connects (a new connection)
    and before it sends (one reused from the pool), so the watchdog can cut it."""

    def connect(self) -> None:
        _watch(self)
        super().connect()
        _watch(self)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self)
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(_WatchedConnection, HTTPSConnection):
    pass


class _WatchedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _WatchedConnection


class _WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


#: The ordinary pools, and the watched ones that replace them.
_WATCHED_POOLS: dict[type[HTTPConnectionPool], type[HTTPConnectionPool]] = {
    HTTPConnectionPool: _WatchedHTTPConnectionPool,
    HTTPSConnectionPool: _WatchedHTTPSConnectionPool,
}


def _watched(manager: PoolManager) -> None:
    """Have *manager* make watched pools where it would make ordinary ones.

    Other pools (a SOCKS proxy's) are left as they are: their requests keep the
    socket timeouts and the check between reads, not the watchdog.
    """
    manager.pool_classes_by_scheme = {
        scheme: _WATCHED_POOLS.get(pool, pool)
        for scheme, pool in manager.pool_classes_by_scheme.items()
    }


class _WatchedAdapter(HTTPAdapter):
    """requests' adapter, with connections the deadline's watchdog can cut."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        _watched(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        _watched(manager)
        return manager


def parse_retry_after(
    value: str | None, *, now: datetime | None = None
) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    # isascii() too: "²".isdigit() is true, and float() refuses it.
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
