"""The same fake plugged into ``responses``, for unit tests without sockets."""

from __future__ import annotations

import pytest
import requests
import responses

from django_openai_capi.testing import FakeConversionsAPI
from tests.testing.helpers import KEY, PIXEL, live_event

URL = "https://bzr.openai.com/v1/events"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def fake():
    fake = FakeConversionsAPI()
    with responses.RequestsMock() as rsps:
        fake.mock(rsps)
        yield fake


def test_a_valid_batch_is_accepted(fake):
    response = requests.post(
        URL,
        params={"pid": PIXEL},
        json={"events": [live_event()]},
        headers=AUTH,
        timeout=5,
    )

    assert response.status_code == 200
    assert response.json() == {"accepted_events": 1, "validate_only": False}
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["x-request-id"].startswith("req_")
    assert fake.accepted_ids() == ["order-1"]


def test_the_pid_is_read_from_the_query_string(fake):
    unknown = requests.post(
        URL + "?pid=other", json={"events": [live_event()]}, headers=AUTH, timeout=5
    )
    missing = requests.post(
        URL, json={"events": [live_event()]}, headers=AUTH, timeout=5
    )

    assert (unknown.status_code, missing.status_code) == (403, 400)


@pytest.mark.parametrize(
    ("data", "status"),
    [(None, 400), ("not json", 400), (b'{"events": []}', 400)],
)
def test_any_body_type_reaches_the_fake(fake, data, status):
    response = requests.post(
        URL, params={"pid": PIXEL}, data=data, headers=AUTH, timeout=5
    )

    assert response.status_code == status
    assert fake.requests[0].raw_body == (
        data.encode() if isinstance(data, str) else data or b""
    )


def test_a_bytes_header_is_read(fake):
    response = requests.post(
        URL,
        params={"pid": PIXEL},
        json={"events": [live_event()]},
        headers={"Authorization": f"Bearer {KEY}".encode()},
        timeout=5,
    )

    assert response.status_code == 200


def test_faults_apply(fake):
    fake.fail_next("rate_limited", retry_after=9)
    fake.fail_next("drop")
    fake.fail_next("delay", seconds=60)

    limited = requests.post(
        URL,
        params={"pid": PIXEL},
        json={"events": [live_event("a")]},
        headers=AUTH,
        timeout=5,
    )
    with pytest.raises(requests.ConnectionError, match="dropped"):
        requests.post(
            URL,
            params={"pid": PIXEL},
            json={"events": [live_event("b")]},
            headers=AUTH,
            timeout=5,
        )
    with pytest.raises(requests.ReadTimeout, match="too late"):
        requests.post(
            URL,
            params={"pid": PIXEL},
            json={"events": [live_event("c")]},
            headers=AUTH,
            timeout=5,
        )

    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "9")
    # The delayed request was processed before the client gave up; the dropped one not.
    assert fake.accepted_ids() == ["c"]


def test_any_url_can_be_mocked():
    fake = FakeConversionsAPI()
    with responses.RequestsMock() as rsps:
        fake.mock(rsps, url="https://capi.test/proxy/events")

        response = requests.post(
            "https://capi.test/proxy/events?pid=test-pixel",
            json={"events": [live_event()]},
            headers=AUTH,
            timeout=5,
        )
        with pytest.raises(requests.ConnectionError):
            requests.post("https://capi.test/proxy/events/more", timeout=5)

    assert response.status_code == 200
    assert fake.requests[0].path == "/v1/events"
