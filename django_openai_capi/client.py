"""The HTTP client: one POST per batch, and nothing else.

It answers with what came back (any status) or raises :class:`TransportError` when
nothing did; deciding what a status means is delivery's job. The API key goes into the
``Authorization`` header and nowhere else: error texts built here never include the
request's headers, and everything that leaves this module is redacted.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from importlib.metadata import PackageNotFoundError, version

import requests

from django_openai_capi.conf import conf
from django_openai_capi.exceptions import TransportError
from django_openai_capi.redaction import describe_exception

#: How much of a response body is kept for errors and the DeliveryBatch row.
BODY_LIMIT = 64 * 1024


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
    body: bytes
    #: ``x-request-id``: what OpenAI support asks for to trace a request.
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
        _local.session = current
    return current


def post_events(pixel_id: str, body: bytes) -> ApiResponse:
    """POST *body* to the events endpoint for *pixel_id*.

    Raises :class:`CapiConfigurationError` when the pixel has no key, and
    :class:`TransportError` when no response came back.
    """
    key = conf.api_key_for(pixel_id)
    started = time.monotonic()
    try:
        response = session().post(
            conf.OPENAI_CAPI_ENDPOINT,
            params={"pid": pixel_id},
            data=body,
            headers={
                "Authorization": f"Bearer {key}",
                "Content-Type": "application/json",
            },
            timeout=conf.OPENAI_CAPI_TIMEOUT,
            allow_redirects=False,
        )
        content = response.content[:BODY_LIMIT]
    except requests.RequestException as exc:
        raise TransportError(
            describe_exception(exc), duration_ms=_elapsed_ms(started)
        ) from None
    return ApiResponse(
        status=response.status_code,
        body=content,
        request_id=response.headers.get("x-request-id", "")[:128],
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
        duration_ms=_elapsed_ms(started),
    )


def _elapsed_ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


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
