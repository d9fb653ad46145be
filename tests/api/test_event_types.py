"""``EventType``: the API's 13 event types as names in code."""

from __future__ import annotations

import pytest

import django_openai_capi
from django_openai_capi import api
from django_openai_capi.api import build_event, encode_event
from django_openai_capi.api.spec import (
    EVENT_DATA_TYPES,
    EVENT_TYPE_DESCRIPTIONS,
    EVENT_TYPES,
    EventType,
)
from django_openai_capi.exceptions import EventValidationError

NOW = 1_760_000_000_000

#: The API's list (shared/reference/conversions-api.md §6), written out again on
#: purpose: the enum is what the checks are made from, so it is checked against this.
API_EVENT_TYPES = {
    "app_installed": "customer_action",
    "app_opened": "customer_action",
    "appointment_scheduled": "customer_action",
    "checkout_started": "contents",
    "contents_viewed": "contents",
    "custom": "custom",
    "items_added": "contents",
    "lead_created": "customer_action",
    "order_created": "contents",
    "page_viewed": "contents",
    "registration_completed": "customer_action",
    "subscription_created": "plan_enrollment",
    "trial_started": "plan_enrollment",
}


def test_the_enum_has_exactly_the_apis_13_types_named_after_them():
    assert len(EventType) == 13
    assert {member.value for member in EventType} == set(API_EVENT_TYPES)
    assert all(member.name == member.value.upper() for member in EventType)
    assert isinstance(EventType.ORDER_CREATED, str)
    assert str.__str__(EventType.ORDER_CREATED) == "order_created"
    assert EventType("trial_started") is EventType.TRIAL_STARTED


def test_the_checked_names_are_made_from_the_enum():
    assert EVENT_DATA_TYPES == API_EVENT_TYPES
    assert set(API_EVENT_TYPES) == EVENT_TYPES
    # Plain strings: they are stored, sent and compared as text.
    assert all(type(name) is str for name in EVENT_DATA_TYPES)
    # In the order of the names, which the model field's choices keep.
    assert list(EVENT_DATA_TYPES) == sorted(API_EVENT_TYPES)


def test_every_type_says_in_one_line_when_to_use_it():
    assert set(EVENT_TYPE_DESCRIPTIONS) == set(API_EVENT_TYPES)
    for text in EVENT_TYPE_DESCRIPTIONS.values():
        assert text.endswith(".") and "\n" not in text and len(text) < 120
    assert "custom_event_name" in EVENT_TYPE_DESCRIPTIONS[EventType.CUSTOM]
    assert "mobile_app" in EVENT_TYPE_DESCRIPTIONS[EventType.APP_INSTALLED]


def test_it_is_exported_beside_model_conversion_and_from_the_api():
    assert django_openai_capi.EventType is EventType
    assert "EventType" in django_openai_capi.__all__
    assert api.EventType is EventType
    assert "EventType" in api.__all__


def test_an_unknown_name_is_still_refused_by_the_package():
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        django_openai_capi.Nothing  # noqa: B018


def test_a_member_builds_the_same_event_as_its_string():
    data = {"amount": 2599, "currency": "USD"}
    by_member = build_event(
        EventType.ORDER_CREATED, event_id="o-1", event_time=NOW, now=NOW, data=data
    )
    by_string = build_event(
        "order_created", event_id="o-1", event_time=NOW, now=NOW, data=data
    )
    assert encode_event(by_member) == encode_event(by_string)
    assert type(by_member["type"]) is str


def test_errors_name_a_member_by_its_string():
    with pytest.raises(EventValidationError) as caught:
        build_event(
            EventType.APP_OPENED,
            event_id="o-1",
            now=NOW,
            action_source="web",
            source_url="https://example.com/",
        )
    assert str(caught.value) == (
        "action_source: must be 'mobile_app' for app_opened, got 'web' "
        "[invalid_action_source]"
    )
