"""The official docs' own examples, and a peer's pinned cases, reproduced exactly."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest

from django_openai_capi.api import (
    build_event,
    build_user,
    hash_identifier,
    normalize,
    validate_event,
    validate_request,
)
from django_openai_capi.api.identity import Rejected
from django_openai_capi.exceptions import EventValidationError

VECTORS = Path(__file__).parent / "vectors"
DOCS = json.loads((VECTORS / "doc-examples.json").read_text())
PEER = json.loads((VECTORS / "webaroundlabs-normalization.cases.json").read_text())

DOC_TIMESTAMP = 1773892800000
JUST_AFTER_DOC_TIMESTAMP = DOC_TIMESTAMP + 60_000


@pytest.mark.parametrize(
    "case", DOCS["normalization_table_from_docs"], ids=lambda c: c["input"]
)
def test_docs_normalisation_table(case):
    assert normalize(case["identifier"], case["input"]) == case["normalized"]
    assert hash_identifier(case["identifier"], case["input"]) == case["sha256"]


@pytest.mark.parametrize(
    "digest,plaintext", DOCS["example_hash_plaintexts_recovered"].items()
)
def test_docs_example_hashes(digest, plaintext):
    value = plaintext.split(" (")[0]
    assert hashlib.sha256(value.encode()).hexdigest() == digest
    kind = {
        "user": "email",
        "cust": "external_id",
        "1415": "phone",
        "ada": "first_name",
        "love": "last_name",
    }
    identifier = next(k for prefix, k in kind.items() if value.startswith(prefix))
    assert hash_identifier(identifier, value) == digest


def test_docs_full_example_event_is_built_exactly():
    expected = DOCS["request_example_current"]["body"]["events"][0]
    event = build_event(
        "order_created",
        event_id="order_12345",
        event_time=DOC_TIMESTAMP,
        oppref="oppref_abc",
        source_url="https://shop.example.com/checkout/confirmation",
        action_source="web",
        user={
            "obref": "123e4567-e89b-42d3-a456-426614174000",
            "email": "user@example.com",
            "external_id": "customer_123",
            "country": "US",
            "city": "San Francisco",
            "postal_code": "94107",
            "ip_address": "203.0.113.1",
            "user_agent": "Mozilla/5.0",
        },
        data={
            "amount": 2599,
            "currency": "USD",
            "contents": [
                {
                    "id": "sku_123",
                    "name": "Starter bundle",
                    "content_type": "product",
                    "quantity": 1,
                }
            ],
        },
        now=JUST_AFTER_DOC_TIMESTAMP,
    )
    assert event == expected


def test_docs_full_request_passes_validation():
    validate_request(
        DOCS["request_example_current"]["body"], now=JUST_AFTER_DOC_TIMESTAMP
    )


def test_docs_full_request_is_too_old_today():
    with pytest.raises(EventValidationError) as caught:
        validate_request(DOCS["request_example_current"]["body"])
    assert caught.value.paths == ["events[0].timestamp_ms"]
    assert caught.value.codes == ["event_timestamp_too_old"]


def test_docs_full_user_object_is_built_exactly():
    user = build_user(
        {
            "obref": "123e4567-e89b-42d3-a456-426614174000",
            "phone": "+1 (415) 555-2671",
            "email": "user@example.com",
            "external_id": "customer_123",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "region": "California",
            "postal_code": "94107",
            "city": "San Francisco",
            "country": "US",
            "android_advertising_id": "38400000-8cf0-11bd-b23e-10b96e40000d",
            "ip_address": "203.0.113.1",
            "user_agent": "Mozilla/5.0",
        }
    )
    assert user == DOCS["full_user_object_example_current"]


@pytest.mark.parametrize(
    "name", ["partner_request_example", "conversion_tracking_example"]
)
def test_docs_request_examples_pass_validation_with_a_current_timestamp(name):
    body = copy.deepcopy(DOCS[name])
    for event in body["events"]:
        event["timestamp_ms"] = JUST_AFTER_DOC_TIMESTAMP
    validate_request(body, now=JUST_AFTER_DOC_TIMESTAMP)


def test_docs_app_opened_example_passes_validation():
    event = dict(DOCS["app_opened_example"], timestamp_ms=DOC_TIMESTAMP)
    validate_event(event, now=DOC_TIMESTAMP)


def test_docs_pixel_pair_server_event_passes_validation():
    validate_event(DOCS["pixel_dedup_pair"]["capi_event"], now=JUST_AFTER_DOC_TIMESTAMP)


def test_the_superseded_singular_user_object_is_refused():
    event = copy.deepcopy(DOCS["request_example_current"]["body"]["events"][0])
    event["user"] = DOCS["request_example_older_singular_user"]["user"]
    with pytest.raises(EventValidationError) as caught:
        validate_event(event, now=JUST_AFTER_DOC_TIMESTAMP)
    assert set(caught.value.paths) == {
        "user.email_sha256",
        "user.external_id_sha256",
        "user.country",
        "user.city",
        "user.zip_code",
    }


@pytest.mark.parametrize(
    "amount_case", DOCS["amount_examples_from_docs"], ids=lambda c: c["display"]
)
def test_docs_amount_examples(amount_case):
    from decimal import Decimal

    from django_openai_capi.api import to_minor_units

    display = (
        amount_case["display"].replace("$", "").replace("JPY ", "").replace(",", "")
    )
    assert (
        to_minor_units(Decimal(display), amount_case["currency"])
        == amount_case["amount"]
    )


@pytest.mark.parametrize(
    "case", PEER["valid"], ids=lambda c: f"{c['field']}:{c['raw']}"
)
def test_peer_pinned_cases(case):
    assert normalize(case["field"], case["raw"]) == case["normalized"]
    assert hash_identifier(case["field"], case["raw"]) == case["sha256"]


def test_peer_divergence_guard_unicode_lowercase():
    guard = PEER["divergence_guard"]
    assert hash_identifier("last_name", guard["raw"]) == guard["correct"]["sha256"]
    assert hash_identifier("last_name", guard["raw"]) != guard["wrong"]["sha256"]


@pytest.mark.parametrize("case", PEER["rejected"], ids=lambda c: c["raw"])
def test_peer_rejected_phones_never_echo_the_number(case):
    with pytest.raises(Rejected) as caught:
        normalize(case["field"], case["raw"])
    assert case["raw"] not in str(caught.value)
    assert case["normalized"] not in str(caught.value) or case["normalized"] == ""
    with pytest.raises(EventValidationError) as built:
        build_user({"phone": case["raw"]})
    assert built.value.paths == ["user.phone"]
    assert case["raw"] not in str(built.value)
