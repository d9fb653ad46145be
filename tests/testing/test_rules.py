"""The documented rules, one event at a time, through the transport-free core."""

from __future__ import annotations

from typing import Any

import pytest

from tests.testing.helpers import (
    DAY_MS,
    HASH,
    MISSING,
    NOW_MS,
    answer,
    error,
    event,
    fixed_fake,
)

CUSTOM = {
    "type": "custom",
    "custom_event_name": "quote_requested",
    "data": {"type": "custom"},
}
LEAD = {"type": "lead_created", "data": {"type": "customer_action"}}
PLAN = {"type": "trial_started", "data": {"type": "plan_enrollment"}}


def data(**fields: Any) -> dict[str, Any]:
    return {"type": "contents"} | fields


def item(**fields: Any) -> dict[str, Any]:
    return {"data": data(currency="USD", contents=[{"id": "sku-1"} | fields])}


VALID: list[tuple[str, dict[str, Any]]] = [
    ("minimal", {"action_source": MISSING, "source_url": MISSING}),
    ("every event field", {"oppref": "op_abc", "opt_out": True, "user": {}}),
    ("nulls are absent", {"oppref": None, "opt_out": None, "custom_event_name": None}),
    ("offline without url", {"action_source": "offline", "source_url": MISSING}),
    ("any url scheme", {"source_url": "android-app://com.example/home"}),
    ("custom", CUSTOM | {"data": {"type": "custom", "anything": [1, {"a": None}]}}),
    ("custom name with dashes", CUSTOM | {"custom_event_name": "Quote-2"}),
    ("custom named custom", CUSTOM | {"custom_event_name": "custom"}),
    (
        "app install",
        {
            "type": "app_installed",
            "action_source": "mobile_app",
            "source_url": MISSING,
            "data": {"type": "customer_action"},
        },
    ),
    ("lead", LEAD),
    ("plan", PLAN | {"data": {"type": "plan_enrollment", "plan_id": "pro"}}),
    ("lowercase currency", {"data": data(amount=0, currency="eur")}),
    ("currency without amount", {"data": data(currency="JPY")}),
    (
        "full item",
        item(
            group_id="g",
            name="Shirt",
            content_type="product",
            quantity=2,
            amount=1000,
            variant_dict={"size": "M"},
        ),
    ),
    (
        "item amount with its own currency",
        {"data": data(contents=[{"amount": 5, "currency": "GBP"}])},
    ),
    ("empty contents", {"data": data(contents=[])}),
    (
        "full user",
        {
            "user": {
                "emails_sha256": [HASH, HASH],
                "phone_numbers_sha256": [HASH],
                "external_ids_sha256": [],
                "first_names_sha256": [HASH],
                "last_names_sha256": [HASH],
                "regions": ["CA"],
                "postal_codes": ["94107"],
                "cities": ["not validated: the API skips bad geo values"],
                "countries": ["US"],
                "android_advertising_id": "38400000-8cf0-11bd-b23e-10b96e40000d",
                "obref": "ob_1",
                "ip_address": "203.0.113.1",
                "user_agent": "Mozilla/5.0",
                "cities_null": MISSING,
            }
        },
    ),
    ("ipv6", {"user": {"ip_address": "2001:db8::1"}}),
    ("user nulls", {"user": {"ip_address": None, "emails_sha256": None}}),
    ("oldest allowed", {"timestamp_ms": NOW_MS - 7 * DAY_MS}),
    ("latest allowed", {"timestamp_ms": NOW_MS + 10 * 60 * 1000}),
]


@pytest.mark.parametrize(
    "fields", [fields for _, fields in VALID], ids=[name for name, _ in VALID]
)
def test_valid_events_are_accepted(fields):
    if "user" in fields:
        fields["user"] = {k: v for k, v in fields["user"].items() if v is not MISSING}
    fake = fixed_fake()

    response = answer(fake, {"events": [event(**fields)]})

    assert response.status == 200, response.body
    assert response.json() == {"accepted_events": 1, "validate_only": False}


INVALID: list[tuple[str, Any, str, str]] = [
    ("unknown field", {"event_id": "x"}, ".event_id", "unknown_field"),
    ("id missing", {"id": MISSING}, ".id", "missing_required_field"),
    ("id empty", {"id": ""}, ".id", "invalid_value"),
    ("id not a string", {"id": 5}, ".id", "invalid_value"),
    ("type missing", {"type": MISSING}, ".type", "missing_required_field"),
    ("type unknown", {"type": "purchase"}, ".type", "invalid_value"),
    ("type not a string", {"type": ["order_created"]}, ".type", "invalid_value"),
    (
        "timestamp missing",
        {"timestamp_ms": MISSING},
        ".timestamp_ms",
        "missing_required_field",
    ),
    (
        "timestamp string",
        {"timestamp_ms": str(NOW_MS)},
        ".timestamp_ms",
        "invalid_value",
    ),
    (
        "timestamp float",
        {"timestamp_ms": NOW_MS + 0.5},
        ".timestamp_ms",
        "invalid_value",
    ),
    ("timestamp bool", {"timestamp_ms": True}, ".timestamp_ms", "invalid_value"),
    (
        "custom name missing",
        CUSTOM | {"custom_event_name": MISSING},
        ".custom_event_name",
        "missing_custom_event_name",
    ),
    (
        "custom name not a string",
        CUSTOM | {"custom_event_name": 7},
        ".custom_event_name",
        "invalid_custom_event_name",
    ),
    (
        "custom name with a space",
        CUSTOM | {"custom_event_name": "quote requested"},
        ".custom_event_name",
        "invalid_custom_event_name",
    ),
    (
        "custom name ending with _",
        CUSTOM | {"custom_event_name": "quote_"},
        ".custom_event_name",
        "invalid_custom_event_name",
    ),
    (
        "custom name too long",
        CUSTOM | {"custom_event_name": "q" * 65},
        ".custom_event_name",
        "invalid_custom_event_name",
    ),
    (
        "custom name is a standard name",
        CUSTOM | {"custom_event_name": "Order_Created"},
        ".custom_event_name",
        "invalid_custom_event_name",
    ),
    (
        "custom name on a standard event",
        {"custom_event_name": "quote"},
        ".custom_event_name",
        "custom_event_name_not_allowed",
    ),
    (
        "action source unknown",
        {"action_source": "website"},
        ".action_source",
        "invalid_action_source",
    ),
    (
        "action source not a string",
        {"action_source": ["web"]},
        ".action_source",
        "invalid_action_source",
    ),
    (
        "app event without action source",
        {
            "type": "app_opened",
            "action_source": MISSING,
            "source_url": MISSING,
            "data": {"type": "customer_action"},
        },
        ".action_source",
        "invalid_action_source",
    ),
    (
        "app event from the web",
        {"type": "app_opened", "data": {"type": "customer_action"}},
        ".action_source",
        "invalid_action_source",
    ),
    ("web without url", {"source_url": MISSING}, ".source_url", "missing_source_url"),
    (
        "url without scheme",
        {"source_url": "shop.example.com/x"},
        ".source_url",
        "invalid_source_url",
    ),
    (
        "url without host",
        {"source_url": "https:///x"},
        ".source_url",
        "invalid_source_url",
    ),
    (
        "url unparsable",
        {"source_url": "https://[::1/x"},
        ".source_url",
        "invalid_source_url",
    ),
    ("url not a string", {"source_url": 42}, ".source_url", "invalid_source_url"),
    ("oppref not a string", {"oppref": 1}, ".oppref", "invalid_type"),
    ("opt_out not a boolean", {"opt_out": "true"}, ".opt_out", "invalid_type"),
    ("user not an object", {"user": ["x"]}, ".user", "invalid_type"),
    (
        "user legacy field",
        {"user": {"email_sha256": HASH}},
        ".user.email_sha256",
        "unknown_field",
    ),
    (
        "hash uppercase",
        {"user": {"emails_sha256": [HASH.upper()]}},
        ".user.emails_sha256",
        "invalid_hash",
    ),
    (
        "hash not a list",
        {"user": {"emails_sha256": HASH}},
        ".user.emails_sha256",
        "invalid_hash",
    ),
    (
        "hash not a string",
        {"user": {"phone_numbers_sha256": [1]}},
        ".user.phone_numbers_sha256",
        "invalid_hash",
    ),
    (
        "raw email",
        {"user": {"emails_sha256": ["a@example.com"]}},
        ".user.emails_sha256",
        "invalid_hash",
    ),
    (
        "geo not a list",
        {"user": {"countries": "US"}},
        ".user.countries",
        "invalid_type",
    ),
    (
        "geo not strings",
        {"user": {"postal_codes": [94107]}},
        ".user.postal_codes",
        "invalid_type",
    ),
    (
        "ip invalid",
        {"user": {"ip_address": "203.0.113.256"}},
        ".user.ip_address",
        "invalid_ip_address",
    ),
    (
        "ip not a string",
        {"user": {"ip_address": 3405803777}},
        ".user.ip_address",
        "invalid_ip_address",
    ),
    (
        "gaid not a uuid",
        {"user": {"android_advertising_id": "gaid"}},
        ".user.android_advertising_id",
        "invalid_value",
    ),
    ("obref blank", {"user": {"obref": " "}}, ".user.obref", "invalid_value"),
    (
        "user agent empty",
        {"user": {"user_agent": ""}},
        ".user.user_agent",
        "invalid_value",
    ),
    ("data missing", {"data": MISSING}, ".data", "missing_required_field"),
    ("data not an object", {"data": "contents"}, ".data", "invalid_type"),
    (
        "data type missing",
        {"data": {"amount": 1, "currency": "USD"}},
        ".data.type",
        "missing_event_data_type",
    ),
    (
        "data type unknown",
        {"data": {"type": "order"}},
        ".data.type",
        "invalid_data_type",
    ),
    (
        "data type not a string",
        {"data": {"type": 1}},
        ".data.type",
        "invalid_data_type",
    ),
    (
        "data type mismatch",
        {"data": {"type": "customer_action"}},
        ".data.type",
        "invalid_data_type",
    ),
    (
        "contents in customer_action",
        LEAD | {"data": {"type": "customer_action", "contents": []}},
        ".data.contents",
        "field_not_allowed",
    ),
    (
        "plan_id in contents",
        {"data": data(plan_id="pro")},
        ".data.plan_id",
        "field_not_allowed",
    ),
    (
        "custom field outside custom",
        PLAN | {"data": {"type": "plan_enrollment", "color": "red"}},
        ".data.color",
        "field_not_allowed",
    ),
    (
        "plan_id not a string",
        PLAN | {"data": {"type": "plan_enrollment", "plan_id": 3}},
        ".data.plan_id",
        "invalid_type",
    ),
    (
        "amount float",
        {"data": data(amount=25.99, currency="USD")},
        ".data.amount",
        "invalid_amount",
    ),
    (
        "amount string",
        {"data": data(amount="2599", currency="USD")},
        ".data.amount",
        "invalid_amount",
    ),
    (
        "amount negative",
        {"data": data(amount=-1, currency="USD")},
        ".data.amount",
        "invalid_amount",
    ),
    (
        "amount without currency",
        {"data": data(amount=1)},
        ".data.currency",
        "missing_currency",
    ),
    (
        "currency unknown",
        {"data": data(amount=1, currency="XYZ")},
        ".data.currency",
        "invalid_currency",
    ),
    (
        "currency symbol",
        {"data": data(amount=1, currency="$")},
        ".data.currency",
        "invalid_currency",
    ),
    (
        "currency not a string",
        {"data": data(currency=840)},
        ".data.currency",
        "invalid_currency",
    ),
    (
        "contents not a list",
        {"data": data(contents={"id": "x"})},
        ".data.contents",
        "invalid_type",
    ),
    (
        "item not an object",
        {"data": data(contents=["sku"])},
        ".data.contents[0]",
        "invalid_type",
    ),
    ("item unknown field", item(price=1), ".data.contents[0].price", "unknown_field"),
    ("item id not a string", item(id=1), ".data.contents[0].id", "invalid_type"),
    (
        "item type empty",
        item(content_type=""),
        ".data.contents[0].content_type",
        "invalid_type",
    ),
    (
        "item quantity string",
        item(quantity="1"),
        ".data.contents[0].quantity",
        "invalid_type",
    ),
    (
        "item variants not strings",
        item(variant_dict={"size": 1}),
        ".data.contents[0].variant_dict",
        "invalid_type",
    ),
    (
        "item variants not an object",
        item(variant_dict=["M"]),
        ".data.contents[0].variant_dict",
        "invalid_type",
    ),
    (
        "item amount negative",
        item(amount=-5),
        ".data.contents[0].amount",
        "invalid_amount",
    ),
    (
        "item currency unknown",
        item(currency="ABC"),
        ".data.contents[0].currency",
        "invalid_currency",
    ),
    (
        "item amount without any currency",
        {"data": data(contents=[{"amount": 5}])},
        ".data.contents[0].currency",
        "missing_currency",
    ),
]


@pytest.mark.parametrize(
    ("fields", "param", "code"),
    [case[1:] for case in INVALID],
    ids=[case[0] for case in INVALID],
)
def test_an_invalid_event_rejects_the_batch_and_names_the_field(fields, param, code):
    fake = fixed_fake()
    events = [event("ok-1"), event("bad", **fields), event("ok-2")]

    response = answer(fake, {"events": events})

    assert response.status == 400
    problem = error(response)
    assert problem["message"] == "Invalid event at events[1]. See errors for details."
    assert problem["type"] == "invalid_request_error"
    assert (problem["param"], problem["code"]) == ("events[1]", "invalid_event")
    assert (f"events[1]{param}", code) in {
        (nested["param"], nested["code"]) for nested in problem["errors"]
    }
    for nested in problem["errors"]:
        assert nested["message"].startswith(nested["param"] + " ")
    assert fake.accepted == {}


def test_a_missing_data_type_is_worded_as_observed():
    fake = fixed_fake()
    bad = event(
        type="custom", custom_event_name="ccd", data={"amount": 2599, "currency": "USD"}
    )

    response = answer(fake, {"events": [event(), bad]})

    assert response.status == 400
    assert response.json() == {
        "error": {
            "message": "Invalid event at events[1]. See errors for details.",
            "type": "invalid_request_error",
            "param": "events[1]",
            "code": "invalid_event",
            "errors": [
                {
                    "message": "events[1].data.type must be a supported data type.",
                    "param": "events[1].data.type",
                    "code": "missing_event_data_type",
                }
            ],
        }
    }


def test_an_event_that_is_not_an_object():
    response = answer(fixed_fake(), {"events": ["order-1"]})

    assert error(response)["errors"] == [
        {
            "message": "events[0] must be an object.",
            "param": "events[0]",
            "code": "invalid_type",
        }
    ]


def test_an_unknown_type_does_not_also_refuse_a_custom_name():
    response = answer(
        fixed_fake(), {"events": [event(type="quote", custom_event_name="quote")]}
    )

    assert [nested["param"] for nested in error(response)["errors"]] == [
        "events[0].type"
    ]


def test_every_problem_of_the_first_bad_event_is_listed():
    response = answer(fixed_fake(), {"events": [event(id="", opt_out=1, data=MISSING)]})

    assert [nested["param"] for nested in error(response)["errors"]] == [
        "events[0].id",
        "events[0].opt_out",
        "events[0].data",
    ]


@pytest.mark.parametrize(
    ("timestamp", "code", "message"),
    [
        (
            NOW_MS - 7 * DAY_MS - 1,
            "event_timestamp_too_old",
            "event_timestamp_ms must be within the last 7 days.",
        ),
        (
            NOW_MS + 10 * 60 * 1000 + 1,
            "event_timestamp_too_new",
            "event_timestamp_ms must be no more than 10 minutes in the future.",
        ),
    ],
)
def test_a_timestamp_out_of_the_window_is_a_422(timestamp, code, message):
    fake = fixed_fake()

    response = answer(
        fake, {"events": [event("a"), event("b", timestamp_ms=timestamp)]}
    )

    assert response.status == 422
    assert response.json() == {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": "events[1].timestamp_ms",
            "code": code,
            "errors": [
                {"message": message, "param": "events[1].timestamp_ms", "code": code}
            ],
        }
    }
    assert fake.accepted == {}


def test_shape_errors_come_before_time_window_errors():
    stale = event("a", timestamp_ms=NOW_MS - 8 * DAY_MS)
    too_new = event("b", timestamp_ms=NOW_MS + DAY_MS)

    response = answer(
        fixed_fake(), {"events": [stale, too_new, event("c", id=MISSING)]}
    )

    assert response.status == 400
    assert error(response)["param"] == "events[2]"


def test_the_first_stale_event_is_reported():
    stale = event("a", timestamp_ms=NOW_MS - 8 * DAY_MS)
    too_new = event("b", timestamp_ms=NOW_MS + DAY_MS)

    response = answer(fixed_fake(), {"events": [event("ok"), too_new, stale]})

    assert error(response)["param"] == "events[1].timestamp_ms"


TOP_LEVEL: list[tuple[str, dict[str, Any], str, str]] = [
    ("unknown key", {"pid": "test-pixel"}, "pid", "unknown_field"),
    (
        "validate_only string",
        {"validate_only": "false"},
        "validate_only",
        "invalid_type",
    ),
    (
        "integration_source empty",
        {"integration_source": ""},
        "integration_source",
        "invalid_integration_source",
    ),
    (
        "integration_source too long",
        {"integration_source": "a" * 65},
        "integration_source",
        "invalid_integration_source",
    ),
    (
        "integration_source leading dot",
        {"integration_source": ".acme"},
        "integration_source",
        "invalid_integration_source",
    ),
    (
        "integration_source non-ascii",
        {"integration_source": "acmé"},
        "integration_source",
        "invalid_integration_source",
    ),
    (
        "integration_source number",
        {"integration_source": 7},
        "integration_source",
        "invalid_integration_source",
    ),
    ("events not a list", {"events": {"id": "x"}}, "events", "invalid_events"),
    ("events empty", {"events": []}, "events", "invalid_events"),
    (
        "events too many",
        {"events": [event(str(i)) for i in range(1001)]},
        "events",
        "invalid_events",
    ),
]


@pytest.mark.parametrize(
    ("fields", "param", "code"),
    [case[1:] for case in TOP_LEVEL],
    ids=[case[0] for case in TOP_LEVEL],
)
def test_top_level_problems(fields, param, code):
    response = answer(fixed_fake(), {"events": [event()]} | fields)

    assert response.status == 400
    assert error(response) == {
        "message": error(response)["message"],
        "type": "invalid_request_error",
        "param": param,
        "code": code,
    }
    assert error(response)["message"].startswith(param + " ")


@pytest.mark.parametrize(
    "fields",
    [
        {"validate_only": None, "integration_source": None},
        {"validate_only": False, "integration_source": "  Acme_Measurement.v2 "},
        {"events": [event(str(i)) for i in range(1000)]},
    ],
)
def test_top_level_values_accepted(fields):
    assert answer(fixed_fake(), {"events": [event()]} | fields).status == 200
