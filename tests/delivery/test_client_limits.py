"""The client's limits, tried against a server on loopback that misbehaves on purpose.

A whole request is cut at its deadline however slowly the server drips; no more of a
body is read than is kept, however much the server sends; and an ``x-request-id`` is
cleaned before anything stores, logs or shows it.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import ssl
import subprocess
import time
import tracemalloc
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone
from hypothesis import example, given
from hypothesis import strategies as st

from django_openai_capi import client
from django_openai_capi.api.identifiers import REQUEST_ID_MAX_LENGTH
from django_openai_capi.client import BODY_LIMIT, clean_request_id, post_events
from django_openai_capi.conf import request_deadline
from django_openai_capi.delivery import send_pending
from django_openai_capi.delivery.verification import verify
from django_openai_capi.exceptions import TransportError
from django_openai_capi.models import (
    ConversionEvent,
    DeliveryBatch,
    ErrorKind,
    PixelPause,
)
from tests.hostile import HostileServer, Script, Wire, answer, head, silent
from tests.outbox import MakeEvents

Status = ConversionEvent.Status

KEY = "sk-svcacct-HOSTILE-0123456789abcdef"
#: Generous: the machine is shared, and what is checked is "cut near the deadline",
#: against the tens of seconds each server below would otherwise hold a request.
SLACK = 3.0


@pytest.fixture(autouse=True)
def secret_key(settings: Any) -> None:
    settings.OPENAI_CAPI_API_KEY = KEY


@pytest.fixture(autouse=True)
def fresh_session() -> Iterator[None]:
    """Each test starts with an empty connection pool, and leaves none behind."""
    client._local.session = None
    yield
    client.session().close()
    client._local.session = None


def serve(settings: Any, script: Script, **kwargs: Any) -> HostileServer:
    server = HostileServer(script, **kwargs)
    settings.OPENAI_CAPI_ENDPOINT = server.url
    return server


def drip_body(wire: Wire) -> bool:
    """A 503 whose 100-byte body comes at 5 bytes a second: 20 s in all.

    Not a 2xx: the body of any other answer is what delivery acts on, so cutting it
    leaves no answer (a 2xx is the 2xx however its body ends: ``drip_accepted``).
    """
    wire.send(head(503, {"Content-Length": "100"}))
    wire.drip(b"x" * 100, every=0.2)
    return True


def drip_accepted(wire: Wire) -> bool:
    """A 200 at once, then its 100-byte body at 5 bytes a second: 20 s in all."""
    wire.send(head(200, {"Content-Length": "100", "x-request-id": "req_dripped"}))
    wire.drip(b"x" * 100, every=0.2)
    return True


def break_off_accepted(wire: Wire) -> bool:
    """A 200 promising 100 bytes of body that hangs up after 10."""
    wire.send(head(200, {"Content-Length": "100"}) + b"x" * 10)
    return False


def drip_head(wire: Wire) -> bool:
    """Headers at 5 bytes a second, each byte well inside any socket timeout."""
    wire.drip(head(200, {"Content-Length": "2", "X-Padding": "p" * 100}), every=0.2)
    wire.send(b"{}")
    return True


class Stopwatch:
    def __enter__(self) -> Stopwatch:
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.seconds = time.monotonic() - self.started

    def cut_near(self, deadline: float) -> bool:
        """Whether the request took its deadline, give or take the machine's load."""
        return deadline - 0.05 <= self.seconds < deadline + SLACK


# 1. A total deadline per request --------------------------------------------------


def test_a_body_dripped_a_byte_at_a_time_is_cut_at_the_whole_request_deadline(
    settings: Any,
) -> None:
    settings.OPENAI_CAPI_TIMEOUT = 1.0
    with (
        serve(settings, drip_body),
        Stopwatch() as clock,
        pytest.raises(TransportError) as caught,
    ):
        post_events("test-pixel", b"{}")

    assert clock.cut_near(1.0), clock.seconds
    assert "within 1 s" in str(caught.value)
    assert "OPENAI_CAPI_TIMEOUT" in str(caught.value)
    assert 950 <= caught.value.duration_ms < (1 + SLACK) * 1000


def test_headers_dripped_a_byte_at_a_time_are_cut_at_the_deadline(
    settings: Any,
) -> None:
    settings.OPENAI_CAPI_TIMEOUT = 1.0
    with (
        serve(settings, drip_head),
        Stopwatch() as clock,
        pytest.raises(TransportError, match="OPENAI_CAPI_TIMEOUT"),
    ):
        post_events("test-pixel", b"{}")

    assert clock.cut_near(1.0), clock.seconds


def test_a_connect_and_read_pair_bounds_the_whole_request_by_their_sum(
    settings: Any,
) -> None:
    settings.OPENAI_CAPI_TIMEOUT = (0.5, 1.0)
    assert request_deadline(settings.OPENAI_CAPI_TIMEOUT) == 1.5
    with (
        serve(settings, drip_body),
        Stopwatch() as clock,
        pytest.raises(TransportError, match="within 1.5 s"),
    ):
        post_events("test-pixel", b"{}")

    assert clock.cut_near(1.5), clock.seconds


def test_a_server_that_never_reads_the_request_cannot_hold_the_send(
    settings: Any,
) -> None:
    settings.OPENAI_CAPI_TIMEOUT = 1.0
    with (
        serve(settings, silent, read_request=False),
        Stopwatch() as clock,
        pytest.raises(TransportError, match="OPENAI_CAPI_TIMEOUT"),
    ):
        post_events("test-pixel", b"x" * (32 * 1024 * 1024))

    assert clock.cut_near(1.0), clock.seconds


def test_a_tls_handshake_dripped_a_byte_at_a_time_is_cut_at_the_deadline(
    settings: Any,
) -> None:
    # The start of a TLS record announcing 16 KiB: the client waits for all of it.
    record = b"\x16\x03\x03\x40\x00" + b"\x00" * 16384

    def drip_handshake(wire: Wire) -> bool:
        wire.drip(record, every=0.2)
        return False

    settings.OPENAI_CAPI_TIMEOUT = 1.0
    with serve(settings, drip_handshake, read_request=False) as server:
        settings.OPENAI_CAPI_ENDPOINT = server.url.replace("http:", "https:")
        with (
            Stopwatch() as clock,
            pytest.raises(TransportError, match="OPENAI_CAPI_TIMEOUT"),
        ):
            post_events("test-pixel", b"{}")

    assert clock.cut_near(1.0), clock.seconds


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, str]:
    """A server context with a self-signed certificate for 127.0.0.1, and its path."""
    openssl = shutil.which("openssl")
    if openssl is None:
        # As for the browser test: CI must run the TLS cases, not pass without them.
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the TLS tests, and they need the openssl command")
        pytest.skip("needs the openssl command to make a certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context, str(cert)


def serve_tls(
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    tls: tuple[ssl.SSLContext, str],
    script: Script,
) -> HostileServer:
    context, cert = tls
    # requests trusts the bundle this variable names, as it would a company's CA.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", cert)
    server = HostileServer(script, tls=context)
    settings.OPENAI_CAPI_ENDPOINT = server.url
    return server


def test_a_body_dripped_over_tls_is_cut_at_the_deadline(
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    tls: tuple[ssl.SSLContext, str],
) -> None:
    settings.OPENAI_CAPI_TIMEOUT = 1.0
    with (
        serve_tls(settings, monkeypatch, tls, drip_body) as server,
        Stopwatch() as clock,
        pytest.raises(TransportError, match="OPENAI_CAPI_TIMEOUT"),
    ):
        post_events("test-pixel", b"{}")

    assert server.requests == 1  # the handshake went through; the body was cut
    assert clock.cut_near(1.0), clock.seconds


def test_a_prompt_answer_over_tls_keeps_its_connection(
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    tls: tuple[ssl.SSLContext, str],
) -> None:
    with serve_tls(settings, monkeypatch, tls, answer(200, b'{"ok": 1}')) as server:
        first = post_events("test-pixel", b"{}")
        second = post_events("test-pixel", b"{}")

    assert (first.status, second.body) == (200, b'{"ok": 1}')
    assert server.connections == 1


def test_a_drip_through_an_http_proxy_is_cut_at_the_deadline(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.OPENAI_CAPI_TIMEOUT = 1.0
    with HostileServer(drip_body) as proxy:
        for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", proxy.url.removesuffix("/v1/events"))
        settings.OPENAI_CAPI_ENDPOINT = "http://capi.test/v1/events"
        with (
            Stopwatch() as clock,
            pytest.raises(TransportError, match="OPENAI_CAPI_TIMEOUT"),
        ):
            post_events("test-pixel", b"{}")

    assert proxy.requests == 1  # it went through the proxy
    assert clock.cut_near(1.0), clock.seconds


def test_a_request_past_its_deadline_before_connecting_does_not_connect(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Name resolution cannot be interrupted; what follows it must not start late.
    settings.OPENAI_CAPI_TIMEOUT = 0.3
    resolve = socket.getaddrinfo

    def slow_resolver(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.6)
        return resolve(*args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow_resolver)
    with (
        serve(settings, answer(200)) as server,
        pytest.raises(TransportError, match="within 0.3 s"),
    ):
        post_events("test-pixel", b"{}")

    assert server.requests == 0


@pytest.mark.parametrize("script", [drip_body, drip_head], ids=["503 body", "head"])
def test_a_request_cut_by_the_deadline_before_a_2xx_is_retried_by_delivery(
    settings: Any, make_events: MakeEvents, script: Script
) -> None:
    settings.OPENAI_CAPI_TIMEOUT = 1.0
    make_events(3)
    with serve(settings, script):
        report = send_pending()

    assert (report.sent, report.failed, report.retried) == (0, 0, 3)
    assert set(ConversionEvent.objects.values_list("status", flat=True)) == {
        Status.PENDING
    }
    event = ConversionEvent.objects.first()
    assert event is not None and event.last_error_kind == ErrorKind.NETWORK
    assert event.last_error.startswith("No response: no complete answer within 1 s")
    batch = DeliveryBatch.objects.get()
    assert batch.outcome == DeliveryBatch.Outcome.NETWORK_ERROR
    assert batch.http_status is None and batch.duration_ms is not None
    assert batch.duration_ms < (1 + SLACK) * 1000


def test_a_2xx_whose_body_drips_past_the_deadline_is_the_2xx_at_the_deadline(
    settings: Any,
) -> None:
    settings.OPENAI_CAPI_TIMEOUT = 1.0
    with serve(settings, drip_accepted) as server:
        with Stopwatch() as clock:
            first = post_events("test-pixel", b"{}")
        second = post_events("test-pixel", b"{}")

    assert clock.cut_near(1.0), clock.seconds
    assert (first.status, first.request_id) == (200, "req_dripped")
    assert 950 <= first.duration_ms < (1 + SLACK) * 1000
    # The half-read connection was closed, not pooled: the next request opened one.
    assert (second.status, server.connections) == (200, 2)


def test_a_2xx_whose_body_breaks_off_is_the_2xx(settings: Any) -> None:
    with serve(settings, break_off_accepted) as server:
        response = post_events("test-pixel", b"{}")

    assert response.status == 200
    assert server.requests == 1


def test_a_200_whose_body_drips_is_recorded_as_sent_once(
    settings: Any, make_events: MakeEvents
) -> None:
    settings.OPENAI_CAPI_TIMEOUT = 1.0
    make_events(3)
    with serve(settings, drip_accepted) as server:
        report = send_pending()
        ConversionEvent.objects.update(next_attempt_at=timezone.now())
        again = send_pending()

    assert (report.sent, report.retried, report.failed) == (3, 0, 0)
    assert again.requests == 0
    assert server.requests == 1
    assert set(ConversionEvent.objects.values_list("status", flat=True)) == {
        Status.SENT
    }
    batch = DeliveryBatch.objects.get()
    assert (batch.outcome, batch.http_status, batch.request_id) == (
        DeliveryBatch.Outcome.ACCEPTED,
        200,
        "req_dripped",
    )


def test_a_prompt_answer_is_not_cut_and_its_connection_is_reused(
    settings: Any,
) -> None:
    settings.OPENAI_CAPI_TIMEOUT = 0.5
    with serve(settings, answer(200, b'{"accepted_events": 1}')) as server:
        first = post_events("test-pixel", b"{}")
        time.sleep(0.7)  # past the first request's deadline: its watchdog is off
        second = post_events("test-pixel", b"{}")

    assert (first.status, second.status) == (200, 200)
    assert second.body == b'{"accepted_events": 1}'
    assert server.connections == 1


def test_the_session_used_outside_post_events_has_no_deadline(settings: Any) -> None:
    # The deadline belongs to post_events' request, not to the pooled session.
    def slow(wire: Wire) -> bool:
        wire.send(head(200, {"Content-Length": "2"}))
        wire.drip(b"{}", every=0.3)
        return True

    settings.OPENAI_CAPI_TIMEOUT = 0.2
    with HostileServer(slow) as server:
        response = client.session().post(server.url, data=b"{}", timeout=5)

    assert response.status_code == 200 and response.content == b"{}"


# 2. Read at most what is kept ------------------------------------------------------

HUGE = 400 * 1024 * 1024
#: What the server can write beyond what the client read: both ends' socket buffers.
BUFFERED = 8 * 1024 * 1024


def test_a_huge_error_body_is_read_only_as_far_as_it_is_kept(settings: Any) -> None:
    def huge(wire: Wire) -> bool:
        wire.send(head(500, {"Content-Length": str(HUGE)}))
        wire.flood(HUGE)
        return True

    with serve(settings, huge) as server:
        tracemalloc.start()
        try:
            response = post_events("test-pixel", b"{}")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    assert response.status == 500
    assert response.body == b"x" * BODY_LIMIT
    assert server.written < BODY_LIMIT + BUFFERED
    assert peak < 4 * BODY_LIMIT + 1024 * 1024


def test_an_endless_chunked_body_is_read_only_as_far_as_it_is_kept(
    settings: Any,
) -> None:
    def endless(wire: Wire) -> bool:
        wire.send(head(502, {"Transfer-Encoding": "chunked"}))
        while True:
            wire.send(b"4000\r\n" + b"y" * 0x4000 + b"\r\n")

    with serve(settings, endless) as server:
        response = post_events("test-pixel", b"{}")

    assert (response.status, len(response.body)) == (502, BODY_LIMIT)
    assert server.written < BODY_LIMIT + BUFFERED


def test_a_body_cut_short_does_not_go_back_to_the_pool_half_read(
    settings: Any,
) -> None:
    answers = iter([b"z" * (3 * BODY_LIMIT), b'{"next": true}'])

    def script(wire: Wire) -> bool:
        body = next(answers)
        wire.send(head(200, {"Content-Length": str(len(body))}) + body)
        return True

    with serve(settings, script) as server:
        cut = post_events("test-pixel", b"{}")
        after = post_events("test-pixel", b"{}")

    assert len(cut.body) == BODY_LIMIT
    # Read from the same connection, the next answer would start in the cut body.
    assert after.body == b'{"next": true}'
    assert server.connections == 2


def test_a_body_of_exactly_the_limit_is_kept_whole(settings: Any) -> None:
    body = b"e" * BODY_LIMIT
    with serve(settings, answer(400, body)) as server:
        response = post_events("test-pixel", b"{}")
        again = post_events("test-pixel", b"{}")

    assert response.body == again.body == body
    assert server.connections == 1


def test_the_answer_is_asked_for_uncompressed(settings: Any) -> None:
    seen: list[bytes] = []

    def script(wire: Wire) -> bool:
        seen.append(wire.last_request)
        return answer(200)(wire)

    with serve(settings, script):
        post_events("test-pixel", b"{}")

    assert b"\r\nAccept-Encoding: identity\r\n" in seen[0]


# 3. x-request-id is text from outside ---------------------------------------------

HOSTILE_ID = b"req_\x00abc\x1b[2J\t\x7f" + KEY.encode() + b"\x85end"


def hostile_id(status: int, body: bytes = b"{}") -> Script:
    return answer(status, body, raw_headers=b"x-request-id: " + HOSTILE_ID + b"\r\n")


CLEAN_ID = "req_abc[2J[redacted]end"


@given(st.text())
@example("req_\x00abc")
@example(KEY)
@example("sk-svcacct-HOS\x00TILE-0123456789abcdef")
@example("r" * 500)
@example("x" * 120 + KEY)
def test_a_clean_request_id_is_printable_short_and_keyless(value: str) -> None:
    cleaned = clean_request_id(value)

    assert cleaned.isprintable()
    assert len(cleaned) <= REQUEST_ID_MAX_LENGTH
    assert "sk-svcacct-HOS" not in cleaned


def test_a_real_request_id_is_kept_as_it_is() -> None:
    value = "req_" + "0123456789abcdef" * 2
    assert clean_request_id(value) == value


def test_the_request_id_columns_hold_what_the_client_keeps() -> None:
    for model in (DeliveryBatch, PixelPause):
        field = model._meta.get_field("request_id")
        assert getattr(field, "max_length", None) == REQUEST_ID_MAX_LENGTH


def test_a_nul_in_the_request_id_does_not_fail_an_accepted_request(
    settings: Any, make_events: MakeEvents, caplog: pytest.LogCaptureFixture
) -> None:
    make_events(3)
    with serve(settings, hostile_id(200)), caplog.at_level(logging.DEBUG):
        report = send_pending()

    assert (report.sent, report.failed, report.retried) == (3, 0, 0)
    assert set(ConversionEvent.objects.values_list("status", flat=True)) == {
        Status.SENT
    }
    assert DeliveryBatch.objects.get().request_id == CLEAN_ID
    assert KEY not in caplog.text and "\x00" not in caplog.text


def test_a_hostile_request_id_reaches_the_pause_the_log_and_the_admin_clean(
    settings: Any,
    make_events: MakeEvents,
    caplog: pytest.LogCaptureFixture,
    admin_client: Any,
) -> None:
    make_events(2)
    unauthorized = b'{"error": {"message": "Unauthorized", "type": "x"}}'
    with serve(settings, hostile_id(401, unauthorized)), caplog.at_level(logging.INFO):
        send_pending()

    pause = PixelPause.objects.get()
    assert pause.request_id == CLEAN_ID
    assert CLEAN_ID in pause.error
    assert CLEAN_ID in caplog.text
    assert DeliveryBatch.objects.get().request_id == CLEAN_ID
    pages = "".join(
        admin_client.get(
            reverse(f"admin:django_openai_capi_{name}_changelist")
        ).content.decode()
        for name in ("pixelpause", "deliverybatch")
    )
    assert pages.count(CLEAN_ID) >= 2
    assert KEY not in pages and "\x00" not in pages and "\x1b" not in pages
    for text in (
        caplog.text,
        pause.error,
        *ConversionEvent.objects.values_list("last_error", flat=True),
    ):
        assert KEY not in text
        assert not any(char in text for char in "\x00\x1b\t\x7f\x85")


@pytest.mark.django_db
def test_openai_capi_verify_shows_a_hostile_request_id_clean(settings: Any) -> None:
    with serve(settings, hostile_id(503, b'{"error": {"message": "busy"}}')):
        result = verify("test-pixel")
        stdout, stderr = StringIO(), StringIO()
        with pytest.raises(CommandError) as failed:
            call_command("openai_capi_verify", stdout=stdout, stderr=stderr)

    assert result.request_id == CLEAN_ID
    assert CLEAN_ID in result.advice
    printed = stdout.getvalue() + stderr.getvalue() + str(failed.value)
    assert f"request id {CLEAN_ID}" in printed
    assert KEY not in printed and "\x00" not in printed
