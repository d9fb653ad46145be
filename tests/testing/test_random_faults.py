"""Faults drawn at random by weight, and connections reset rather than closed."""

from __future__ import annotations

import functools
import operator
from collections import Counter

import pytest
import requests
import responses

from django_openai_capi.testing import FakeConversionsAPI
from django_openai_capi.testing.fake import over_one
from tests.testing.helpers import KEY, PIXEL, live_event


def post(fake: FakeConversionsAPI, url: str) -> requests.Response:
    return requests.post(
        url,
        params={"pid": PIXEL},
        json={"events": [live_event()]},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=5,
    )


def faults_seen(fake: FakeConversionsAPI, requests_made: int) -> list[str | None]:
    for _ in range(requests_made):
        fake.handle(
            "POST",
            f"/v1/events?pid={PIXEL}",
            {"Authorization": f"Bearer {KEY}"},
            b'{"events": []}',
        )
    return [request.fault for request in fake.requests]


def test_random_faults_follow_their_weights_and_replay_from_the_seed() -> None:
    first = FakeConversionsAPI(api_key=KEY, pixels=[PIXEL])
    first.fail_randomly({"server_error": 0.2, "reset": 0.1}, seed=7)
    again = FakeConversionsAPI(api_key=KEY, pixels=[PIXEL])
    again.fail_randomly({"server_error": 0.2, "reset": 0.1}, seed=7)

    seen = faults_seen(first, 2000)

    assert seen == faults_seen(again, 2000)
    counts = Counter(seen)
    assert set(counts) == {None, "server_error", "reset"}
    assert 300 < counts["server_error"] < 500
    assert 130 < counts["reset"] < 270


def test_scripted_faults_come_first_and_an_outage_fills_the_unfaulted_draws() -> None:
    fake = FakeConversionsAPI(api_key=KEY, pixels=[PIXEL])
    fake.fail_randomly({"drop": 0.5}, seed=1)
    fake.fail_next("unauthorized", times=2)
    fake.outage("bad_gateway")

    seen = faults_seen(fake, 200)

    assert seen[:2] == ["unauthorized", "unauthorized"]
    assert set(seen[2:]) == {"drop", "bad_gateway"}

    fake.fail_randomly(None)
    fake.outage(None)
    assert faults_seen(fake, 1)[-1] is None


def test_reset_forgets_the_random_faults() -> None:
    fake = FakeConversionsAPI(api_key=KEY, pixels=[PIXEL])
    fake.fail_randomly({"server_error": 1.0})
    fake.reset()
    assert faults_seen(fake, 20) == [None] * 20


@pytest.mark.parametrize(
    "weights", [{"server_error": 0.7, "drop": 0.4}, {"server_error": -0.1}]
)
def test_weights_are_chances_per_request(weights: dict[str, float]) -> None:
    fake = FakeConversionsAPI(api_key=KEY, pixels=[PIXEL])
    with pytest.raises(ValueError, match="chances per request"):
        fake.fail_randomly(weights)  # type: ignore[arg-type]


def test_chances_summing_to_one_are_taken_despite_rounding() -> None:
    # Added up in order these floats make 1.0000000000000002 (Python 3.11's sum() does;
    # 3.12's compensated sum() happens to get 1.0): "more than 1" would be false.
    weights = {"server_error": 0.34, "drop": 0.56, "bad_gateway": 0.1}
    assert functools.reduce(operator.add, weights.values()) > 1
    fake = FakeConversionsAPI(api_key=KEY, pixels=[PIXEL])
    fake.fail_randomly(weights)  # type: ignore[arg-type]
    assert None not in faults_seen(fake, 50)


def test_over_one_allows_rounding_only() -> None:
    assert not over_one(1.0)
    assert not over_one(1 + 2**-52)
    assert over_one(1.001)


def test_an_unknown_fault_kind_is_refused() -> None:
    fake = FakeConversionsAPI(api_key=KEY, pixels=[PIXEL])
    with pytest.raises(ValueError, match="Unknown fault"):
        fake.fail_randomly({"hiccup": 0.1})  # type: ignore[dict-item]


def test_a_reset_is_not_processed_and_answers_nothing() -> None:
    fake = FakeConversionsAPI(api_key=KEY, pixels=[PIXEL])
    fake.fail_next("reset")

    answer = fake.handle(
        "POST",
        f"/v1/events?pid={PIXEL}",
        {"Authorization": f"Bearer {KEY}"},
        b'{"events": []}',
    )

    assert answer is None
    assert fake.requests[0].status is None
    assert fake.requests[0].fault == "reset"
    assert not fake.accepted


def test_a_reset_over_http_is_a_connection_reset() -> None:
    with FakeConversionsAPI(api_key=KEY, pixels=[PIXEL]) as fake:
        fake.fail_next("reset")
        with pytest.raises(requests.ConnectionError) as caught:
            post(fake, fake.url)
        assert "reset" in str(caught.value).lower()
        # The next request, on a new connection, is answered.
        assert post(fake, fake.url).status_code == 200
    assert len(fake.accepted) == 1


def test_a_reset_under_responses_is_a_connection_error() -> None:
    fake = FakeConversionsAPI(api_key=KEY, pixels=[PIXEL])
    fake.fail_next("reset")
    with responses.RequestsMock() as rsps:
        fake.mock(rsps)
        with pytest.raises(requests.ConnectionError, match="reset the connection"):
            post(fake, "https://bzr.openai.com/v1/events")
    assert not fake.accepted
