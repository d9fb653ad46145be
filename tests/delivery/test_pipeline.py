"""The next request in flight while this one is recorded, and nothing sent ahead into trouble."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest
import responses

from django_openai_capi.delivery import claim as claiming
from django_openai_capi.delivery import pipeline, send_pending
from django_openai_capi.delivery.claim import Claim
from django_openai_capi.models import ConversionEvent
from tests.outbox import ENDPOINT, MakeEvents, error_envelope, sent_ids

Status = ConversionEvent.Status

Reply = tuple[int, dict[str, str], str]


@pytest.fixture
def claims(monkeypatch: pytest.MonkeyPatch) -> list[Claim]:
    """Every claim the pipeline takes, in order, as it takes it."""
    taken: list[Claim] = []
    claim_batch = claiming.claim_batch

    def recording(*args: Any, **kwargs: Any) -> Claim | None:
        claim = claim_batch(*args, **kwargs)
        if claim is not None:
            taken.append(claim)
        return claim

    monkeypatch.setattr(pipeline, "claim_batch", recording)
    return taken


def ids_of(claim: Claim) -> list[str]:
    return [event.event_id for event in claim.events]


def test_once_a_request_went_through_the_next_batch_is_claimed_while_one_is_in_flight(
    make_events: MakeEvents, api: responses.RequestsMock, claims: list[Claim]
) -> None:
    make_events(3)
    claims_seen_by_request: list[int] = []

    def answer(request: Any) -> Reply:
        # Wait (briefly) for a claim to be taken while this request is in flight.
        for _ in range(100):
            if len(claims) > len(claims_seen_by_request) + 1:
                break
            threading.Event().wait(0.01)
        claims_seen_by_request.append(len(claims))
        return 200, {}, "{}"

    api.add_callback("POST", ENDPOINT, callback=answer)

    report = send_pending(batch_size=1)

    # The first request goes alone: until one has gone through, nothing is claimed
    # ahead. During the second, the third batch is claimed.
    assert claims_seen_by_request == [1, 3, 3]
    assert [sent_ids(call) for call in api.calls] == [ids_of(claim) for claim in claims]
    assert (report.batches, report.claimed, report.sent) == (3, 3, 3)
    assert set(ConversionEvent.objects.values_list("status", flat=True)) == {
        Status.SENT
    }


def test_a_claim_taken_ahead_is_given_back_when_the_answer_in_flight_pauses_the_pixel(
    make_events: MakeEvents, api: responses.RequestsMock, claims: list[Claim]
) -> None:
    make_events(3)
    api.post(ENDPOINT, json={})
    api.post(ENDPOINT, status=503, json={"error": {"message": "down"}})

    report = send_pending(batch_size=1)

    assert len(api.calls) == 2
    assert len(claims) == 3
    ahead = ConversionEvent.objects.get(event_id=ids_of(claims[2])[0])
    # As it was before the claim: pending, due, its attempt given back.
    assert (ahead.status, ahead.attempts, ahead.lease_expires_at) == (
        Status.PENDING,
        0,
        None,
    )
    assert (report.batches, report.claimed, report.sent, report.retried) == (
        2,
        2,
        1,
        1,
    )
    assert "test-pixel" in report.paused


def test_after_a_rejected_batch_the_requests_go_one_at_a_time_again(
    make_events: MakeEvents, api: responses.RequestsMock, claims: list[Claim]
) -> None:
    make_events(4)
    bad = "lead-1"

    def answer(request: Any) -> Reply:
        ids = [event["id"] for event in json.loads(request.body)["events"]]
        if bad in ids:
            return 400, {}, error_envelope(ids.index(bad))
        return 200, {}, "{}"

    api.add_callback("POST", ENDPOINT, callback=answer)

    report = send_pending(batch_size=1)

    assert [sent_ids(call) for call in api.calls] == [[f"lead-{i}"] for i in range(4)]
    assert (report.sent, report.failed) == (3, 1)
    # The claim of lead-2 was taken during the rejected request and sent after it was
    # recorded; lead-3 was claimed only after lead-2's request went through.
    assert len(claims) == 4


def test_stopping_gives_back_a_claim_whose_request_was_not_sent(
    make_events: MakeEvents, api: responses.RequestsMock
) -> None:
    make_events(3)
    api.post(ENDPOINT, json={})
    api.post(ENDPOINT, status=400, json=json.loads(error_envelope(0)))
    stop = threading.Event()

    report = send_pending(
        batch_size=1,
        should_stop=stop.is_set,
        on_batch=lambda r: stop.set() if r.failed else None,
    )

    assert len(api.calls) == 2
    assert (report.batches, report.sent, report.failed) == (2, 1, 1)
    third = ConversionEvent.objects.get(event_id="lead-2")
    assert (third.status, third.attempts) == (Status.PENDING, 0)


def test_stopping_finishes_the_request_already_in_flight_and_claims_nothing_more(
    make_events: MakeEvents, api: responses.RequestsMock
) -> None:
    make_events(5)
    api.post(ENDPOINT, json={})
    stop = threading.Event()

    report = send_pending(
        batch_size=1,
        should_stop=stop.is_set,
        on_batch=lambda r: stop.set() if r.sent >= 2 else None,
    )

    # The third request was sent when the second answer came back, before the stop.
    assert len(api.calls) == 3
    assert (report.batches, report.sent) == (3, 3)
    statuses = list(ConversionEvent.objects.values_list("status", flat=True))
    assert sorted(statuses) == [Status.PENDING] * 2 + [Status.SENT] * 3


def test_a_claim_of_only_stale_events_sends_nothing_ahead(
    make_events: MakeEvents, api: responses.RequestsMock
) -> None:
    make_events(2)
    claim = claiming.claim_batch("test-pixel", size=2)
    assert claim is not None
    stale = replace(
        claim, events=tuple(replace(event, stale=True) for event in claim.events)
    )

    assert pipeline.ask_ahead(stale, validate_only=False) is None
    assert len(api.calls) == 0


def test_a_pixel_with_nothing_left_to_claim_makes_no_request(
    db: None, api: responses.RequestsMock
) -> None:
    # Between the pixel list and the claim, another worker may have taken it all.
    drain = pipeline.Drain(
        pixel_id="test-pixel",
        size=10,
        validate_only=False,
        worker="test",
        using="default",
        may_claim=lambda: True,
        on_claimed=lambda claim: None,
        on_released=lambda report: None,
        on_delivered=lambda result: None,
        should_stop=lambda: False,
    )

    with ThreadPoolExecutor(1) as executor:
        assert drain.run(executor) is None
    assert len(api.calls) == 0
