"""The fake over real HTTP on loopback, as the delivery code would meet it."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
import requests

from django_openai_capi.testing import EventKey, FakeConversionsAPI
from tests.testing.helpers import KEY, PIXEL, live_event

AUTH = {"Authorization": f"Bearer {KEY}"}


def post(fake, body, *, session=None, pixel=PIXEL, key=KEY, **kwargs):
    return (session or requests).post(
        fake.url,
        params={"pid": pixel},
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=kwargs.pop("timeout", 10),
        **kwargs,
    )


def connect(fake):
    parts = urlsplit(fake.url)
    assert parts.hostname is not None
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)


def test_the_url_is_a_loopback_events_endpoint(fake):
    assert urlsplit(fake.url).hostname == "127.0.0.1"
    assert urlsplit(fake.url).path == "/v1/events"
    assert urlsplit(fake.url).port


def test_a_valid_batch_is_accepted(fake):
    response = post(fake, {"events": [live_event("a"), live_event("b")]})

    assert response.status_code == 200
    assert response.json() == {"accepted_events": 2, "validate_only": False}
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["openai-version"] == "2020-10-01"
    assert response.headers["x-request-id"] == fake.requests[0].request_id
    assert fake.accepted_ids() == ["a", "b"]


def test_errors_come_back_in_the_envelope(fake):
    unauthorized = post(fake, {"events": [live_event()]}, key="wrong")
    unknown_pid = post(fake, {"events": [live_event()]}, pixel="other")
    invalid = post(fake, {"events": [live_event(id="")]})

    assert unauthorized.status_code == 401
    assert unauthorized.json()["error"]["message"] == "Unauthorized"
    assert unknown_pid.status_code == 403
    assert invalid.status_code == 400
    assert invalid.json()["error"]["param"] == "events[0]"


def test_other_paths_are_not_found_and_other_methods_not_allowed(fake):
    root = fake.url.removesuffix("/v1/events")

    assert requests.post(root + "/v2/events", timeout=10).status_code == 404
    assert requests.get(fake.url, headers=AUTH, timeout=10).status_code == 405


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("unauthorized", 401),
        ("missing_scope", 401),
        ("unknown_pid", 403),
        ("auth_backend_failure", 503),
        ("server_error", 500),
        ("bad_gateway", 502),
    ],
)
def test_scripted_faults_over_http(fake, kind, status):
    fake.fail_next(kind)

    response = post(fake, {"events": [live_event()]})

    assert response.status_code == status
    assert response.json()["error"]["message"]
    assert post(fake, {"events": [live_event()]}).status_code == 200


def test_rate_limited_sends_retry_after(fake):
    fake.fail_next("rate_limited", retry_after=3)

    response = post(fake, {"events": [live_event()]})

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"


def test_a_dropped_connection_is_a_connection_error(fake):
    fake.fail_next("drop")

    with requests.Session() as session:
        with pytest.raises(requests.ConnectionError):
            post(fake, {"events": [live_event()]}, session=session)
        # The next request opens a new connection and is answered.
        assert (
            post(fake, {"events": [live_event()]}, session=session).status_code == 200
        )
    assert [request.status for request in fake.requests] == [None, 200]


def test_a_delay_lets_the_client_time_out_after_the_events_were_accepted(fake):
    fake.fail_next("delay", seconds=1.0)

    with pytest.raises(requests.ReadTimeout):
        post(fake, {"events": [live_event("late")]}, timeout=0.2)

    # As with the real API, a timeout does not mean the events were lost: a resend
    # with the same id is a duplicate.
    deadline = time.monotonic() + 10
    while not fake.requests and time.monotonic() < deadline:  # a loaded machine
        time.sleep(0.01)
    assert fake.accepted_ids() == ["late"]
    assert post(fake, {"events": [live_event("late")]}).status_code == 200
    assert fake.receipts[EventKey(PIXEL, "order_created", "late")] == 2


def test_a_delay_shorter_than_the_timeout_is_answered(fake):
    fake.fail_next("delay", seconds=0.1)

    assert post(fake, {"events": [live_event()]}).status_code == 200


def test_an_outage_then_recovery(fake):
    fake.outage("auth_backend_failure")
    during = [post(fake, {"events": [live_event()]}).status_code for _ in range(3)]
    fake.outage(None)

    assert during == [503, 503, 503]
    assert post(fake, {"events": [live_event()]}).status_code == 200


def test_one_connection_serves_many_requests():
    with FakeConversionsAPI() as fake:
        connection = connect(fake)
        body = json.dumps({"events": [live_event()]})
        for _ in range(3):
            connection.request("POST", f"/v1/events?pid={PIXEL}", body, AUTH)
            if _ == 0:
                first_socket = connection.sock
            response = connection.getresponse()
            assert response.status == 200
            assert response.getheader("Content-Length") == str(len(response.read()))
            assert connection.sock is first_socket
        connection.close()


def test_a_session_is_answered_after_errors(fake):
    with requests.Session() as session:
        statuses = [
            post(fake, {"events": [live_event(id="")]}, session=session).status_code,
            post(
                fake, {"events": [live_event()]}, session=session, key="x"
            ).status_code,
            post(fake, {"events": [live_event()]}, session=session).status_code,
        ]

    assert statuses == [400, 401, 200]


def test_stop_closes_kept_alive_connections():
    fake = FakeConversionsAPI().start()
    connection = connect(fake)
    body = json.dumps({"events": [live_event()]})
    connection.request("POST", f"/v1/events?pid={PIXEL}", body, AUTH)
    connection.getresponse().read()

    fake.stop()

    with pytest.raises((OSError, http.client.HTTPException)):
        connection.request("POST", f"/v1/events?pid={PIXEL}", body, AUTH)
        connection.getresponse()
    connection.close()
    assert len(fake.requests) == 1


def test_it_can_be_started_again_after_stopping():
    fake = FakeConversionsAPI()
    with fake:
        post(fake, {"events": [live_event("a")]})
    with fake:
        post(fake, {"events": [live_event("b")]})

    assert fake.accepted_ids() == ["a", "b"]


def test_starting_twice_is_refused(fake):
    with pytest.raises(RuntimeError, match="already running"):
        fake.start()


def raw_request(fake, head: bytes) -> bytes:
    parts = urlsplit(fake.url)
    assert parts.hostname is not None and parts.port is not None
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("length", [None, b"abc", b"-1"])
def test_a_request_without_a_usable_length_is_answered_and_closed(fake, length):
    head = b"POST /v1/events?pid=test-pixel HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-key\r\n"
    if length is not None:
        head += b"Content-Length: " + length + b"\r\n"

    # The server closes the connection after answering, so reading to EOF ends.
    reply = raw_request(fake, head + b"\r\n")

    assert reply.startswith(b"HTTP/1.1 400 ")
    assert b"Missing required field: events" in reply


def test_requests_are_not_logged_unless_verbose(capsys):
    with FakeConversionsAPI() as quiet:
        post(quiet, {"events": [live_event()]})
    assert capsys.readouterr().err == ""

    with FakeConversionsAPI().start(verbose=True) as verbose:
        post(verbose, {"events": [live_event()]})
    assert '"POST /v1/events?pid=test-pixel HTTP/1.1" 200' in capsys.readouterr().err


@pytest.mark.parametrize("verbose", [False, True])
def test_a_crash_in_a_handler_is_only_reported_when_verbose(capsys, verbose):
    def explode(request):
        raise RuntimeError("boom")

    with (
        FakeConversionsAPI(on_request=explode).start(verbose=verbose) as fake,
        pytest.raises(requests.ConnectionError),
    ):
        post(fake, {"events": [live_event()]})

    assert ("RuntimeError: boom" in capsys.readouterr().err) is verbose


def test_concurrent_clients_see_one_winner_per_key(fake):
    threads = 8
    barrier = threading.Barrier(threads)

    def client(worker):
        with requests.Session() as session:
            barrier.wait()
            statuses = []
            for batch in range(10):
                events = [live_event(f"w{worker}-b{batch}-{i}") for i in range(50)]
                # Every worker also sends "shared" with its own marker: one must win.
                events.append(
                    live_event("shared", source_url=f"https://w{worker}.example.com/")
                )
                statuses.append(
                    post(fake, {"events": events}, session=session).status_code
                )
            return statuses

    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(client, range(threads)))

    assert all(status == 200 for statuses in results for status in statuses)
    shared = EventKey(PIXEL, "order_created", "shared")
    assert len(fake.accepted) == threads * 10 * 50 + 1
    assert fake.receipts[shared] == threads * 10
    winner = fake.accepted[shared]["source_url"]
    first_request = next(r for r in fake.requests if "shared" in r.event_ids)
    assert winner == first_request.body["events"][-1]["source_url"]
    assert len(fake.requests) == threads * 10
