"""The core: keys, pixels, faults, recording and deduplication, without a transport."""

from __future__ import annotations

import re
import time
from typing import get_args

import pytest

from django_openai_capi.testing import (
    EventKey,
    FakeConversionsAPI,
    FaultKind,
    RecordedRequest,
)
from django_openai_capi.testing.errors import FAULT_KINDS
from tests.testing.helpers import (
    HASH,
    KEY,
    NOW_MS,
    PIXEL,
    answer,
    envelope,
    error,
    event,
    fixed_fake,
    send,
)

BODY = {"events": [event()]}
MISSING_SCOPE = (
    "You have insufficient permissions for this operation. Missing scopes: "
    "ads.third_party_events.write. Check that you have the correct role in your "
    "organization, and if you're using a restricted API key, that it has the "
    "necessary scopes."
)
MISSING_PID = "[{'type': 'missing', 'loc': ('query', 'pid'), 'msg': 'Field required', 'input': None}]"


def test_every_answer_carries_the_api_headers():
    response = answer(fixed_fake(), BODY)

    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["openai-version"] == "2020-10-01"
    assert re.fullmatch(r"req_[0-9a-f]{32}", response.headers["x-request-id"])
    assert response.delay == 0


def test_request_ids_differ():
    fake = fixed_fake()

    ids = {answer(fake, BODY).headers["x-request-id"] for _ in range(5)}

    assert len(ids) == 5


@pytest.mark.parametrize(
    ("key", "headers"),
    [
        ("unknown-key", None),
        (None, None),
        (None, {"Authorization": "Basic dGVzdC1rZXk="}),
        (None, {"Authorization": "Bearer "}),
    ],
)
def test_a_request_without_a_known_key_is_unauthorized(key, headers):
    fake = fixed_fake()

    if headers is None:
        response = send(fake, BODY, key=key)
    else:
        response = fake.handle("POST", f"/v1/events?pid={PIXEL}", headers, b"{}")

    assert response is not None
    assert response.status == 401
    assert response.json() == envelope("Unauthorized")


def test_the_bearer_scheme_and_header_name_are_case_insensitive():
    fake = fixed_fake()

    response = fake.handle(
        "POST",
        f"/v1/events?pid={PIXEL}",
        {"authorization": f"bearer {KEY}"},
        b'{"events": []}',
    )

    assert response is not None
    assert response.status == 400  # past authentication: the body is refused


def test_a_key_without_the_scope_is_told_which_scope_is_missing():
    fake = fixed_fake(unscoped_keys=["advertiser-key"])

    response = answer(fake, BODY, key="advertiser-key")

    assert response.status == 401
    assert response.json() == envelope(MISSING_SCOPE)


def test_a_missing_pid_is_a_pydantic_style_400():
    response = answer(fixed_fake(), BODY, pixel=None)

    assert response.status == 400
    assert response.json() == envelope(MISSING_PID)


@pytest.mark.parametrize("pixel", ["other-pixel", ""])
def test_an_unknown_pid_is_a_403(pixel):
    response = answer(fixed_fake(), BODY, pixel=pixel)

    assert response.status == 403
    assert response.json() == envelope("403: unknown pid", type="server_error")


def test_authentication_comes_before_the_pid():
    assert answer(fixed_fake(), BODY, pixel=None, key="nope").status == 401


def test_keys_and_pixels_can_be_added_bound_and_revoked():
    fake = fixed_fake(api_key=None, pixels=[])
    assert answer(fake, BODY).status == 401
    fake.add_key("pixel-a-key", pixels=["pixel-a"])
    fake.add_pixel("pixel-a")
    fake.add_pixel("pixel-b")

    assert answer(fake, BODY, key="pixel-a-key", pixel="pixel-a").status == 200
    assert answer(fake, BODY, key="pixel-a-key", pixel="pixel-b").status == 403

    fake.revoke_key("pixel-a-key")
    fake.revoke_key("never-added")
    assert answer(fake, BODY, key="pixel-a-key", pixel="pixel-a").status == 401


@pytest.mark.parametrize(
    "body", [b"", b"not json", b"\xff\xfe{", b'{"event": []}', b"[]", b"[" * 100_000]
)
def test_a_body_without_events_is_refused(body):
    response = answer(fixed_fake(), body)

    assert response.status == 400
    assert response.json() == envelope("Missing required field: events")


def test_another_path_is_not_found():
    fake = fixed_fake()

    response = answer(fake, BODY, path="/v1/sdk/events")

    assert response.status == 404
    assert response.json() == envelope("Not found")
    assert fake.requests[0].path == "/v1/sdk/events"


def test_another_method_is_not_allowed():
    response = answer(fixed_fake(), BODY, method="GET")

    assert response.status == 405


# Recording


def test_accepted_events_are_recorded_and_deduplicated_first_wins():
    fake = fixed_fake()
    first = event("order-1", source_url="https://shop.example.com/first")
    later = event("order-1", source_url="https://shop.example.com/later")
    other_type = event("order-1", type="checkout_started")

    assert answer(fake, {"events": [first, event("order-2")]}).status == 200
    assert answer(fake, {"events": [later, other_type, later]}).status == 200

    key = EventKey(PIXEL, "order_created", "order-1")
    assert fake.accepted[key] == first
    assert list(fake.accepted) == [
        key,
        EventKey(PIXEL, "order_created", "order-2"),
        EventKey(PIXEL, "checkout_started", "order-1"),
    ]
    assert fake.receipts[key] == 3
    assert fake.receipts[EventKey(PIXEL, "order_created", "order-2")] == 1
    assert fake.accepted_ids() == ["order-1", "order-2", "order-1"]


def test_custom_events_are_deduplicated_on_their_lowercased_name():
    fake = fixed_fake()
    custom = {"type": "custom", "data": {"type": "custom"}}

    answer(fake, {"events": [event("q-1", custom_event_name="Quote", **custom)]})
    answer(fake, {"events": [event("q-1", custom_event_name="quote", **custom)]})
    answer(fake, {"events": [event("q-1", custom_event_name="demo", **custom)]})

    assert list(fake.receipts.items()) == [
        (EventKey(PIXEL, "quote", "q-1"), 2),
        (EventKey(PIXEL, "demo", "q-1"), 1),
    ]
    assert (
        fake.accepted[EventKey(PIXEL, "quote", "q-1")]["custom_event_name"] == "Quote"
    )


def test_the_same_id_on_two_pixels_is_two_events():
    fake = fixed_fake(pixels=["a", "b"])

    answer(fake, BODY, pixel="a")
    answer(fake, BODY, pixel="b")

    assert fake.accepted_ids("a") == ["order-1"]
    assert fake.accepted_ids("b") == ["order-1"]
    assert fake.accepted_ids("c") == []


def test_validate_only_validates_and_records_nothing_as_accepted():
    fake = fixed_fake()

    good = answer(fake, {"validate_only": True, "events": [event()]})
    bad = answer(fake, {"validate_only": True, "events": [event(id="")]})

    assert (good.status, good.json()) == (
        200,
        {"accepted_events": 1, "validate_only": True},
    )
    assert bad.status == 400
    assert fake.accepted == {}
    assert fake.receipts == {}
    assert [request.validate_only for request in fake.requests] == [True, True]


def test_refused_batches_accept_nothing():
    fake = fixed_fake()

    answer(fake, {"events": [event("a"), event("b", id=5)]})

    assert fake.accepted == {}
    assert fake.requests[0].status == 400


def test_every_request_is_recorded_without_the_key():
    fake = fixed_fake()
    body = {"events": [event("a"), event("b"), "not an event", event("c", id=1)]}

    response = answer(fake, body)
    answer(fake, b"not json", key="wrong")

    recorded, garbage = fake.requests
    assert recorded.method == "POST"
    assert recorded.path == "/v1/events"
    assert recorded.pixel == PIXEL
    assert recorded.key_fingerprint == FakeConversionsAPI.fingerprint(KEY)
    assert KEY not in repr(recorded)
    assert recorded.body == body
    assert recorded.event_count == 4
    assert recorded.event_ids == ("a", "b")
    assert recorded.validate_only is False
    assert recorded.status == response.status == 400
    assert recorded.request_id == response.headers["x-request-id"]
    assert recorded.fault is None
    assert garbage.body is None
    assert garbage.event_count == 0
    assert garbage.key_fingerprint == FakeConversionsAPI.fingerprint("wrong")
    assert garbage.key_fingerprint != recorded.key_fingerprint


def test_a_request_without_a_key_has_no_fingerprint():
    fake = fixed_fake()

    answer(fake, BODY, key=None)

    assert fake.requests[0].key_fingerprint is None


def test_on_request_sees_each_record():
    seen: list[RecordedRequest] = []
    fake = fixed_fake(on_request=seen.append)

    answer(fake, BODY)

    assert seen == fake.requests


def test_reset_forgets_what_was_seen_and_scripted_but_not_keys():
    fake = fixed_fake()
    answer(fake, BODY)
    fake.fail_next("server_error")
    fake.outage("drop")
    fake.reject_events({"order-1"})

    fake.reset()

    assert fake.requests == []
    assert len(fake.accepted) == len(fake.receipts) == 0
    assert answer(fake, BODY).status == 200


def test_the_snapshots_are_copies():
    fake = fixed_fake()
    answer(fake, BODY)

    accepted = fake.accepted
    fake.requests.clear()
    fake.receipts.clear()
    accepted[EventKey(PIXEL, "order_created", "order-1")]["id"] = "changed"
    answer(fake, {"events": [event("order-2")]})

    assert len(fake.requests) == len(fake.receipts) == 2
    assert len(accepted) == 1
    assert fake.accepted_ids() == ["order-1", "order-2"]
    assert fake.accepted[EventKey(PIXEL, "order_created", "order-1")] == event()


def test_accepted_events_read_like_a_dict():
    fake = fixed_fake()
    answer(fake, {"events": [event("a"), event("b")]})
    answer(fake, {"events": [event("c")]})

    accepted = fake.accepted

    assert accepted == {
        EventKey(PIXEL, "order_created", name): event(name) for name in "abc"
    }
    assert repr(accepted).startswith(
        "AcceptedEvents({EventKey(pixel='test-pixel', name='order_created', id='a'): {"
    )
    assert EventKey(PIXEL, "order_created", "z") not in accepted


def test_latency_is_added_to_every_answer():
    fake = fixed_fake(latency=0.05)

    started = time.monotonic()
    answer(fake, BODY)

    assert time.monotonic() - started >= 0.05


def test_the_clock_is_real_by_default():
    fake = FakeConversionsAPI()

    assert answer(fake, {"events": [event(timestamp_ms=NOW_MS - 10**12)]}).status == 422
    assert (
        answer(fake, {"events": [event(timestamp_ms=int(time.time() * 1000))]}).status
        == 200
    )


# Rejecting chosen events


@pytest.mark.parametrize(
    "match",
    [{"order-2"}, "order-2", lambda event: event["id"] == "order-2"],
    ids=["ids", "one id", "predicate"],
)
def test_rejected_events_refuse_their_batch_at_the_first_of_them(match):
    fake = fixed_fake()
    fake.reject_events(match)
    events = [event(f"order-{index}") for index in range(1000)]
    events[700] = events[2]

    response = answer(fake, {"events": events})

    assert response.status == 400
    assert response.json() == {
        "error": {
            "message": "Invalid event at events[2]. See errors for details.",
            "type": "invalid_request_error",
            "param": "events[2]",
            "code": "invalid_event",
            "errors": [
                {
                    "message": "Rejected by the fake Conversions API.",
                    "param": "events[2]",
                    "code": "invalid_event",
                }
            ],
        }
    }
    assert fake.accepted == {}
    assert answer(fake, {"events": events[:2] + events[3:700]}).status == 200


def test_a_rejection_can_say_and_answer_anything():
    fake = fixed_fake()
    fake.reject_events({"order-1"}, message="no", code="nope", status=422)

    response = answer(fake, BODY)

    assert response.status == 422
    assert error(response)["errors"] == [
        {"message": "no", "param": "events[0]", "code": "nope"}
    ]


def test_a_documented_problem_is_reported_before_a_rejection():
    fake = fixed_fake()
    fake.reject_events({"order-1"})

    response = answer(fake, {"events": [event("order-0", id=""), event("order-1")]})

    assert error(response)["param"] == "events[0]"


def test_rejections_stop_with_none():
    fake = fixed_fake()
    fake.reject_events({"order-1"})

    fake.reject_events(None)

    assert answer(fake, BODY).status == 200


# Faults

FAULTS = [
    ("unauthorized", 401, envelope("Unauthorized")),
    ("missing_scope", 401, envelope(MISSING_SCOPE)),
    ("unknown_pid", 403, envelope("403: unknown pid", type="server_error")),
    (
        "auth_backend_failure",
        503,
        envelope("503: Authentication backend failure", type="server_error"),
    ),
    ("server_error", 500, envelope("500: Internal server error", type="server_error")),
    ("bad_gateway", 502, envelope("502: Bad gateway", type="server_error")),
    ("rate_limited", 429, envelope("429: Too many requests", type="rate_limit_error")),
]


@pytest.mark.parametrize(("kind", "status", "body"), FAULTS, ids=[f[0] for f in FAULTS])
def test_a_scripted_fault_answers_the_next_request_only(kind, status, body):
    fake = fixed_fake()
    fake.fail_next(kind)

    failed = answer(fake, BODY)
    recovered = answer(fake, BODY)

    assert (failed.status, failed.json()) == (status, body)
    assert failed.headers["x-request-id"].startswith("req_")
    assert recovered.status == 200
    assert [request.fault for request in fake.requests] == [kind, None]
    assert list(fake.receipts.values()) == [1]


def test_rate_limiting_says_when_to_retry():
    fake = fixed_fake()
    fake.fail_next("rate_limited", retry_after=7)
    fake.fail_next("server_error")

    limited = answer(fake, BODY)

    assert limited.headers["Retry-After"] == "7"
    assert "Retry-After" not in answer(fake, BODY).headers


def test_faults_are_applied_in_order_and_times_times():
    fake = fixed_fake()
    fake.fail_next("auth_backend_failure", times=2)
    fake.fail_next("unauthorized")

    statuses = [answer(fake, BODY).status for _ in range(4)]

    assert statuses == [503, 503, 401, 200]


def test_a_fault_comes_before_every_check():
    fake = fixed_fake()
    fake.fail_next("bad_gateway")

    assert answer(fake, b"junk", key=None, pixel=None).status == 502


def test_drop_answers_nothing_and_processes_nothing():
    fake = fixed_fake()
    fake.fail_next("drop")

    assert send(fake, BODY) is None
    assert fake.accepted == {}
    assert fake.requests[0].status is None
    assert fake.requests[0].fault == "drop"


def test_delay_processes_then_asks_the_transport_to_wait():
    fake = fixed_fake()
    fake.fail_next("delay", seconds=2.5)

    response = answer(fake, BODY)

    assert (response.status, response.delay) == (200, 2.5)
    assert fake.accepted_ids() == ["order-1"]
    assert fake.requests[0].fault == "delay"


def test_an_outage_lasts_until_lifted_and_scripted_faults_come_first():
    fake = fixed_fake()
    fake.outage("auth_backend_failure")
    fake.fail_next("unauthorized")

    during = [answer(fake, BODY).status for _ in range(3)]
    fake.outage(None)

    assert during == [401, 503, 503]
    assert answer(fake, BODY).status == 200
    assert fake.accepted_ids() == ["order-1"]


def test_an_outage_can_rate_limit():
    fake = fixed_fake()
    fake.outage("rate_limited", retry_after=30)

    assert answer(fake, BODY).headers["Retry-After"] == "30"


def test_a_lost_pid_can_be_played_for_a_request_that_has_one():
    fake = fixed_fake()
    fake.fail_next("missing_pid")

    refused = answer(fake, BODY)

    assert refused.status == 400
    assert refused.json() == envelope(MISSING_PID)
    assert answer(fake, BODY).status == 200


def test_every_request_can_get_the_same_answer_until_it_is_lifted():
    fake = fixed_fake()
    blame = envelope("Invalid event at events[9].", param="events[9]")
    fake.answer_every_request(400, blame)
    fake.fail_next("server_error")

    first, second, third = (answer(fake, BODY) for _ in range(3))
    fake.answer_every_request(
        502, b"<html>Bad gateway</html>", headers={"X-Proxy": "1"}
    )
    proxied = answer(fake, BODY)
    fake.answer_every_request(None)

    assert [first.status, second.status, third.status] == [500, 400, 400]
    assert second.json() == blame
    assert second.headers["x-request-id"] == fake.requests[1].request_id
    assert (proxied.status, proxied.body) == (502, b"<html>Bad gateway</html>")
    assert proxied.headers["X-Proxy"] == "1"
    assert answer(fake, BODY).status == 200
    assert fake.accepted_ids() == ["order-1"]


def test_the_fault_kinds_are_the_typed_ones():
    assert set(get_args(FaultKind)) == FAULT_KINDS


def test_an_unknown_fault_is_refused():
    fake = fixed_fake()

    with pytest.raises(ValueError, match="Unknown fault 'timeout'; use one of"):
        fake.fail_next("timeout")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Unknown fault"):
        fake.outage("down")  # type: ignore[arg-type]


def test_not_running_has_no_url_and_stops_quietly():
    fake = FakeConversionsAPI()

    with pytest.raises(RuntimeError, match="not running"):
        _ = fake.url
    fake.stop()


def test_a_valid_event_with_a_user_is_kept_whole():
    fake = fixed_fake()
    full = event(user={"emails_sha256": [HASH], "ip_address": "203.0.113.1"})

    answer(fake, {"events": [full]})

    assert fake.accepted == {EventKey(PIXEL, "order_created", "order-1"): full}


def test_clear_faults_answers_normally_and_keeps_what_was_seen():
    fake = fixed_fake()
    answer(fake, BODY)
    fake.fail_next("server_error", 3)
    fake.outage("drop")
    fake.fail_randomly({"reset": 1.0})
    fake.reject_events({"order-1"})

    fake.clear_faults()

    assert answer(fake, BODY).status == 200
    assert len(fake.requests) == 2
    assert fake.receipts[EventKey(PIXEL, "order_created", "order-1")] == 2


@pytest.mark.parametrize(
    ("status", "message", "error_type"),
    [
        (504, "504: Gateway Timeout", "server_error"),
        (418, "418: I'm a Teapot", "invalid_request_error"),
        # No reason phrase is registered for 599.
        (599, "599: Error", "server_error"),
    ],
)
def test_a_status_is_a_fault_in_the_apis_envelope(status, message, error_type):
    fake = fixed_fake()
    fake.fail_next(status, 2)

    answers = [answer(fake, BODY) for _ in range(3)]

    assert [response.status for response in answers] == [status, status, 200]
    assert error(answers[0]) == envelope(message, type=error_type)["error"]
    assert answers[0].headers["x-request-id"] == fake.requests[0].request_id
    assert answers[0].headers["Content-Type"] == "application/json"
    assert "Retry-After" not in answers[0].headers
    assert [request.fault for request in fake.requests] == ["status", "status", None]
    assert len(fake.accepted) == 1


def test_a_429_status_fault_says_when_to_retry_and_an_outage_takes_a_status():
    fake = fixed_fake()
    fake.outage(429, retry_after=7)

    response = answer(fake, BODY)
    fake.outage(None)

    assert response.status == 429
    assert response.headers["Retry-After"] == "7"
    assert answer(fake, BODY).status == 200


def test_random_faults_take_a_status():
    fake = fixed_fake()
    fake.fail_randomly({503: 1.0}, seed=1)

    assert answer(fake, BODY).status == 503


@pytest.mark.parametrize("status", [200, 399, 600, True])
def test_a_fault_status_is_an_error_status(status):
    fake = fixed_fake()

    with pytest.raises(ValueError, match=f"from 400 to 599, not {status!r}"):
        fake.fail_next(status)
