from __future__ import annotations

import copy
from collections.abc import Mapping

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from django_openai_capi.api import data_rules, validate_event, validate_request
from django_openai_capi.api.issues import IssueCollector
from django_openai_capi.api.spec import CONTENT_FIELDS, EVENT_DATA_TYPES
from django_openai_capi.api.values import looks_like_email
from django_openai_capi.exceptions import EventValidationError

NOW = 1_790_000_000_000
DIGEST = "b4c9a289323b21a01c3e940f150eb9b8c542587f1abfd8f0e1cc1ffc5e475514"


def event(**overrides):
    base = {
        "id": "order_1",
        "type": "order_created",
        "timestamp_ms": NOW,
        "action_source": "web",
        "source_url": "https://shop.example.com/checkout",
        "data": {"type": "contents", "amount": 2599, "currency": "USD"},
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not ...}


def problems(value, **kwargs):
    with pytest.raises(EventValidationError) as caught:
        validate_event(value, now=NOW, **kwargs)
    return {issue.path: issue.code for issue in caught.value.issues}


def test_a_valid_event_passes():
    validate_event(event(), now=NOW)


@pytest.mark.parametrize("event_type,data_type", EVENT_DATA_TYPES.items())
def test_every_event_type_with_its_data_type_passes(event_type, data_type):
    extra = {"custom_event_name": "demo_booked"} if event_type == "custom" else {}
    source = "mobile_app" if event_type.startswith("app_") else "web"
    validate_event(
        event(type=event_type, action_source=source, data={"type": data_type}, **extra),
        now=NOW,
    )


def test_every_problem_of_an_event_is_reported_not_just_the_first():
    found = problems(
        event(id="", type="purchase", timestamp_ms="yesterday", data=[], opt_out="no")
    )
    assert found == {
        "id": "invalid_id",
        "type": "invalid_type",
        "timestamp_ms": "invalid_type",
        "data": "invalid_type",
        "opt_out": "invalid_type",
    }


def test_required_fields():
    assert problems({}) == {
        "id": "missing_id",
        "type": "missing_type",
        "timestamp_ms": "missing_timestamp",
        "data": "missing_data",
    }


def test_the_path_prefix_is_the_events_index():
    found = problems(
        event(data={"type": "contents", "contents": [{}, {}, {"quantity": "2"}]}),
        path="events[0]",
    )
    assert found == {"events[0].data.contents[2].quantity": "invalid_quantity"}


class TestTimestamp:
    def test_inside_the_window_passes(self):
        validate_event(event(timestamp_ms=NOW - 7 * 86_400_000), now=NOW)
        validate_event(event(timestamp_ms=NOW + 600_000), now=NOW)

    def test_older_than_seven_days_is_refused(self):
        assert problems(event(timestamp_ms=NOW - 7 * 86_400_000 - 1)) == {
            "timestamp_ms": "event_timestamp_too_old"
        }

    def test_more_than_ten_minutes_ahead_is_refused(self):
        assert problems(event(timestamp_ms=NOW + 600_001)) == {
            "timestamp_ms": "event_timestamp_in_future"
        }

    @pytest.mark.parametrize("value", [True, float(NOW), str(NOW)])
    def test_must_be_an_integer(self, value):
        assert problems(event(timestamp_ms=value)) == {"timestamp_ms": "invalid_type"}


class TestCustomEventName:
    @pytest.mark.parametrize("name", ["a", "demo_booked", "Demo-Booked-2", "x" * 64])
    def test_valid_names(self, name):
        validate_event(
            event(type="custom", custom_event_name=name, data={"type": "custom"}),
            now=NOW,
        )

    @pytest.mark.parametrize(
        "name", ["", "_demo", "demo-", "demo booked", "x" * 65, "démo", 5]
    )
    def test_invalid_names(self, name):
        found = problems(
            event(type="custom", custom_event_name=name, data={"type": "custom"})
        )
        assert found == {"custom_event_name": "invalid_custom_event_name"}

    def test_a_standard_name_is_refused_whatever_its_case(self):
        found = problems(
            event(
                type="custom",
                custom_event_name="Order_Created",
                data={"type": "custom"},
            )
        )
        assert found == {"custom_event_name": "invalid_custom_event_name"}

    def test_required_for_custom(self):
        assert problems(event(type="custom", data={"type": "custom"})) == {
            "custom_event_name": "missing_custom_event_name"
        }

    def test_only_with_custom(self):
        assert problems(event(custom_event_name="demo")) == {
            "custom_event_name": "custom_event_name_not_allowed"
        }


class TestActionSourceAndUrl:
    def test_unknown_action_source(self):
        assert problems(event(action_source="store")) == {
            "action_source": "invalid_action_source"
        }

    @pytest.mark.parametrize("source", [..., "web"])
    def test_app_events_must_come_from_the_mobile_app(self, source):
        found = problems(
            event(
                type="app_installed",
                action_source=source,
                data={"type": "customer_action"},
            )
        )
        assert found == {"action_source": "invalid_action_source"}

    def test_source_url_is_required_for_web(self):
        assert problems(event(source_url=...)) == {"source_url": "missing_source_url"}

    def test_source_url_is_optional_elsewhere(self):
        validate_event(event(action_source="offline", source_url=...), now=NOW)
        validate_event(event(action_source=..., source_url=...), now=NOW)

    @pytest.mark.parametrize(
        "url",
        [
            "shop.example.com/checkout",
            "ftp://example.com/",
            "https://",
            "/checkout",
            "http://[::1",
        ],
    )
    def test_source_url_needs_http_scheme_and_host(self, url):
        assert problems(event(source_url=url)) == {"source_url": "invalid_source_url"}

    def test_source_url_with_an_email_in_the_query_is_refused(self):
        found = problems(
            event(source_url="https://shop.example.com/thanks?email=ada%40example.com")
        )
        assert found == {"source_url": "raw_identifier"}


class TestData:
    def test_data_type_must_match_the_event_type(self):
        assert problems(event(data={"type": "customer_action"})) == {
            "data.type": "invalid_event_data_type"
        }
        assert problems(event(data={})) == {"data.type": "missing_event_data_type"}
        assert problems(event(data={"type": "basket"})) == {
            "data.type": "invalid_event_data_type"
        }

    def test_customer_action_has_no_contents(self):
        found = problems(
            event(
                type="lead_created",
                data={"type": "customer_action", "contents": [{"id": "a"}]},
            )
        )
        assert found == {"data.contents": "field_not_allowed"}

    def test_plan_id_only_for_plan_enrollment_and_custom(self):
        assert problems(event(data={"type": "contents", "plan_id": "pro"})) == {
            "data.plan_id": "field_not_allowed"
        }
        validate_event(
            event(
                type="trial_started", data={"type": "plan_enrollment", "plan_id": "pro"}
            ),
            now=NOW,
        )
        assert problems(
            event(type="trial_started", data={"type": "plan_enrollment", "plan_id": 5})
        ) == {"data.plan_id": "invalid_type"}

    def test_custom_fields_only_for_custom(self):
        assert problems(event(data={"type": "contents", "coupon": "X"})) == {
            "data.coupon": "field_not_allowed"
        }
        custom = event(
            type="custom",
            custom_event_name="quote",
            data={
                "type": "custom",
                "coupon": "X",
                "n": 1.5,
                "tags": ["a", None],
                "meta": {"k": True},
            },
        )
        validate_event(custom, now=NOW)

    def test_custom_objects_need_string_keys(self):
        custom = event(
            type="custom",
            custom_event_name="quote",
            data={"type": "custom", "meta": {1: "x"}},
        )
        assert problems(custom) == {"data.meta": "invalid_type"}

    def test_custom_fields_refuse_non_json_and_emails(self):
        custom = event(
            type="custom",
            custom_event_name="quote",
            data={
                "type": "custom",
                "n": float("nan"),
                "who": {"mail": "ada@example.com"},
                "at": object(),
            },
        )
        assert problems(custom) == {
            "data.n": "invalid_type",
            "data.who.mail": "raw_identifier",
            "data.at": "invalid_type",
        }

    @pytest.mark.parametrize("amount", [25.99, "2599", True, None])
    def test_amount_must_be_an_integer_of_minor_units(self, amount):
        assert problems(
            event(data={"type": "contents", "amount": amount, "currency": "USD"})
        ) == {"data.amount": "invalid_amount"}

    def test_negative_amounts_are_refused(self):
        assert problems(
            event(data={"type": "contents", "amount": -1, "currency": "USD"})
        ) == {"data.amount": "invalid_amount"}

    def test_currency_is_required_with_amount_and_must_be_iso_4217(self):
        assert problems(event(data={"type": "contents", "amount": 1})) == {
            "data.currency": "missing_currency"
        }
        assert problems(
            event(data={"type": "contents", "amount": 1, "currency": "DOLLAR"})
        ) == {"data.currency": "invalid_currency"}
        assert problems(event(data={"type": "contents", "currency": "XAU"})) == {
            "data.currency": "invalid_currency"
        }

    def test_content_items(self):
        contents = [
            {
                "id": "sku",
                "group_id": "g",
                "name": "Tee",
                "content_type": "product",
                "quantity": 2,
                "amount": 1500,
                "currency": "EUR",
                "variant_dict": {"size": "M"},
            },
            {
                "id": "",
                "quantity": 0,
                "amount": 5,
                "colour": "red",
                "variant_dict": {"size": 1},
            },
            "sku_3",
            {"name": "ada@example.com", "amount": 1.5},
        ]
        found = problems(event(data={"type": "contents", "contents": contents}))
        assert found == {
            "data.contents[1].id": "invalid_type",
            "data.contents[1].quantity": "invalid_quantity",
            "data.contents[1].colour": "unknown_field",
            "data.contents[1].variant_dict": "invalid_variant_dict",
            "data.contents[1].currency": "missing_currency",
            "data.contents[2]": "invalid_type",
            "data.contents[3].name": "raw_identifier",
            "data.contents[3].amount": "invalid_amount",
            "data.contents[3].currency": "missing_currency",
        }

    def test_item_amount_may_rely_on_the_event_currency(self):
        validate_event(
            event(
                data={
                    "type": "contents",
                    "currency": "USD",
                    "contents": [{"id": "a", "amount": 100}],
                }
            ),
            now=NOW,
        )

    def test_contents_must_be_a_list(self):
        assert problems(event(data={"type": "contents", "contents": {"id": "a"}})) == {
            "data.contents": "invalid_type"
        }


class TestUser:
    def test_the_current_user_object_passes(self):
        user = {
            "emails_sha256": [DIGEST],
            "countries": ["US"],
            "cities": ["Paris"],
            "regions": ["IDF"],
            "postal_codes": ["75001"],
            "ip_address": "::1",
            "user_agent": "UA",
            "obref": "o",
            "android_advertising_id": "38400000-8cf0-11bd-b23e-10b96e40000d",
        }
        validate_event(event(user=user), now=NOW)

    def test_raw_identifiers_are_refused_where_hashes_belong(self):
        found = problems(
            event(
                user={
                    "emails_sha256": ["ada@example.com", DIGEST.upper()],
                    "phone_numbers_sha256": "14155552671",
                }
            )
        )
        assert found == {
            "user.emails_sha256[0]": "raw_identifier",
            "user.emails_sha256[1]": "raw_identifier",
            "user.phone_numbers_sha256": "invalid_type",
        }

    def test_raw_values_never_appear_in_the_error(self):
        with pytest.raises(EventValidationError) as caught:
            validate_event(
                event(
                    user={
                        "emails_sha256": ["ada@example.com"],
                        "email": "ada@example.com",
                    }
                ),
                now=NOW,
            )
        assert "ada@example.com" not in str(caught.value)

    def test_unknown_and_malformed_user_fields(self):
        found = problems(
            event(
                user={
                    "email": "x",
                    "countries": ["USA", ""],
                    "postal_codes": ["a" * 33],
                    "ip_address": "localhost",
                    "user_agent": " ",
                    "android_advertising_id": "x",
                }
            )
        )
        assert found == {
            "user.email": "unknown_field",
            "user.countries[0]": "invalid_country",
            "user.countries[1]": "invalid_type",
            "user.postal_codes[0]": "too_long",
            "user.ip_address": "invalid_ip_address",
            "user.user_agent": "invalid_type",
            "user.android_advertising_id": "invalid_android_advertising_id",
        }

    def test_user_must_be_an_object(self):
        assert problems(event(user="ada")) == {"user": "invalid_type"}


def test_oppref_is_any_non_empty_string():
    validate_event(event(oppref="op_xyz+/= anything"), now=NOW)
    assert problems(event(oppref=" ")) == {"oppref": "invalid_oppref"}


def test_unknown_event_fields_are_refused():
    assert problems(event(event_name="order_created", oppcref="x")) == {
        "event_name": "unknown_field",
        "oppcref": "unknown_field",
    }


def test_a_non_object_event():
    assert problems(["order"]) == {"": "invalid_type"}


class TestRequest:
    def body(self, **overrides):
        return {"events": [event()], "validate_only": False, **overrides}

    def test_a_valid_request(self):
        validate_request(self.body(integration_source=" Acme_Measurement "), now=NOW)

    def test_events_wrapper_is_required(self):
        with pytest.raises(EventValidationError) as caught:
            validate_request(event(), now=NOW)
        assert "events" in caught.value.paths

    @pytest.mark.parametrize("count", [0, 1001])
    def test_one_to_a_thousand_events(self, count):
        with pytest.raises(EventValidationError) as caught:
            validate_request({"events": [event()] * count}, now=NOW)
        assert caught.value.codes == ["invalid_batch_size"]

    def test_problems_carry_the_index_of_their_event(self):
        bad = copy.deepcopy(event())
        bad["data"]["type"] = None
        with pytest.raises(EventValidationError) as caught:
            validate_request(
                {
                    "events": [event(), bad, event(id=7)],
                    "validate_only": "yes",
                    "integration_source": "-bad",
                    "extra": 1,
                },
                now=NOW,
            )
        assert caught.value.paths == [
            "extra",
            "validate_only",
            "integration_source",
            "events[1].data.type",
            "events[2].id",
        ]

    def test_body_must_be_an_object(self):
        with pytest.raises(EventValidationError):
            validate_request([event()], now=NOW)


def test_unhashable_values_where_names_belong_are_reported_not_crashed():
    # Found by the property tests: a list in `type` once reached a set lookup.
    found = problems(
        event(type=["order_created"], action_source={"web": 1}, data={"type": []})
    )
    assert found == {
        "type": "invalid_type",
        "action_source": "invalid_action_source",
        "data.type": "invalid_event_data_type",
    }


@pytest.mark.parametrize(
    "text,found",
    [
        ("ada@example.com", True),
        ("write to ada@example.com.", True),
        ("mailto:ada@example.co.uk", True),
        ("/thanks?email=ada@example.com&x=1", True),
        ("(ada@example.com)", True),
        ("@handle", False),
        ("user@localhost", False),
        ("price@2.50", False),
        ("a" * 100_000, False),
    ],
)
def test_what_counts_as_an_email_address_in_free_text(text, found):
    assert looks_like_email(text) is found


class TestHostileInput:
    """Input json.loads can produce, or a bug upstream: refused, never a crash."""

    def test_lone_surrogates(self):
        found = problems(
            event(id="\ud800", source_url="https://x.example/\ud800", oppref="\udfff")
        )
        assert found == {
            "id": "invalid_id",
            "source_url": "invalid_source_url",
            "oppref": "invalid_oppref",
        }

    def test_integers_too_long_to_print(self):
        huge = 10**5000
        found = problems(
            event(
                timestamp_ms=huge,
                opt_out=huge,
                data={"type": "contents", "amount": -huge, "currency": "USD"},
            )
        )
        assert found == {
            "timestamp_ms": "event_timestamp_in_future",
            "opt_out": "invalid_type",
            "data.amount": "invalid_amount",
        }

    def test_amounts_and_quantities_fit_in_64_bits(self):
        found = problems(
            event(
                data={
                    "type": "contents",
                    "amount": 2**63,
                    "currency": "USD",
                    "contents": [{"id": "a", "quantity": 2**63}],
                }
            )
        )
        assert found == {
            "data.amount": "invalid_amount",
            "data.contents[0].quantity": "invalid_quantity",
        }

    def test_custom_values_of_every_json_type_within_bounds_pass(self):
        validate_event(
            event(
                type="custom",
                custom_event_name="quote",
                data={
                    "type": "custom",
                    "edges": [2**63 - 1, -(2**63) + 1, 0.5, -1e300],
                    "flags": {"on": True, "none": None, "text": "plain"},
                },
            ),
            now=NOW,
        )

    def test_custom_values_nest_at_most_32_levels(self):
        deep: list[object] = []
        cursor = deep
        for _ in range(600):
            cursor.append([])
            cursor = cursor[0]  # type: ignore[assignment]
        loop: dict[str, object] = {}
        loop["self"] = loop
        custom = event(
            type="custom",
            custom_event_name="quote",
            data={"type": "custom", "deep": deep, "loop": loop, "big": 2**64},
        )
        assert problems(custom) == {
            "data.deep" + "[0]" * 31: "too_deep",
            "data.loop" + ".self" * 31: "too_deep",
            "data.big": "invalid_type",
        }

    def test_custom_text_must_be_valid_unicode(self):
        custom = event(
            type="custom",
            custom_event_name="quote",
            data={"type": "custom", "note": "\ud800"},
        )
        assert problems(custom) == {"data.note": "invalid_type"}

    def test_non_string_field_names(self):
        custom = event(
            type="custom", custom_event_name="quote", data={"type": "custom", 1: "x"}
        )
        assert problems(custom) == {"data.<key>": "invalid_type"}


class TestNoPersonalDataInErrors:
    def test_free_text_values_are_described_not_repeated(self):
        secret = "john.doe@gmail.com"
        bad = event(
            source_url=f"ftp://shop.example.com/?email={secret}",
            data={
                "type": "contents",
                "contents": [{"id": [secret], "variant_dict": {"to": secret, "n": 1}}],
            },
        )
        with pytest.raises(EventValidationError) as caught:
            validate_event(bad, now=NOW)
        assert secret not in str(caught.value)
        assert len(caught.value.issues) == 3


def test_emails_only_count_in_the_url_query_and_fragment():
    validate_event(event(source_url="https://cdn.example.com/img/logo@2x.png"), now=NOW)
    assert problems(event(source_url="https://x.example/thanks#ada@example.com")) == {
        "source_url": "raw_identifier"
    }


def test_custom_event_name_on_an_unknown_type_is_not_reported_twice():
    assert problems(event(type="purchase", custom_event_name="x")) == {
        "type": "invalid_type"
    }


def test_integration_source_refuses_unicode_that_lowercases_to_ascii():
    with pytest.raises(EventValidationError) as caught:
        validate_request(
            {"events": [event()], "integration_source": "\u212aacme"}, now=NOW
        )
    assert caught.value.paths == ["integration_source"]


class OddMapping(Mapping):  # type: ignore[type-arg]
    """A Mapping that is not a dict and yields an unhashable key."""

    def __init__(self, items):
        self.items_ = items

    def __getitem__(self, key):
        for k, v in self.items_:
            if k == key:
                return v
        raise KeyError(key)

    def __iter__(self):
        return iter(k for k, _ in self.items_)

    def __len__(self):
        return len(self.items_)


def test_unhashable_keys_of_odd_mappings_are_reported_not_crashed():
    user = OddMapping([(["k"], "v")])
    item = OddMapping([(["k"], "v")])
    found = problems(
        OddMapping(
            [
                *event(
                    user=user, data={"type": "contents", "contents": [item]}
                ).items(),
                (["k"], 1),
            ]
        )
    )
    assert found == {
        "<key>": "unknown_field",
        "user.<key>": "unknown_field",
        "data.contents[0].<key>": "unknown_field",
    }
    with pytest.raises(EventValidationError):
        validate_request(OddMapping([("events", [event()]), (["k"], 1)]), now=NOW)


def test_values_are_checked_in_the_form_they_are_sent():
    found = problems(
        event(
            user={
                "ip_address": " 203.0.113.7\n",
                "countries": [" us "],
                "cities": ["Paris"],
            },
            source_url="https://exa\nmple.com/",
        )
    )
    assert found == {
        "user.ip_address": "not_normalized",
        "user.countries[0]": "not_normalized",
        "source_url": "invalid_source_url",
    }


def test_names_are_repeated_in_errors_but_identifiers_are_not():
    assert "'purchase'" in str(
        pytest.raises(
            EventValidationError, validate_event, event(type="purchase"), now=NOW
        ).value
    )
    for field in ("type", "action_source"):
        with pytest.raises(EventValidationError) as caught:
            validate_event(event(**{field: "john.doe@example.com"}), now=NOW)
        assert "john.doe" not in str(caught.value)
    with pytest.raises(EventValidationError) as caught:
        validate_request({"events": [event()], "john.doe@example.com": 1}, now=NOW)
    assert caught.value.paths == ["<key>"]


def test_long_keys_do_not_fill_the_path_cache():
    from django_openai_capi.api.issues import _display_name

    before = _display_name.cache_info().currsize
    problems(
        event(
            type="custom",
            custom_event_name="q",
            data={"type": "custom", "k" * 100_000: "\ud800"},
        )
    )
    assert _display_name.cache_info().currsize == before


def test_an_event_of_a_mapping_type_json_cannot_encode_is_refused_not_passed():
    from types import MappingProxyType

    assert problems(MappingProxyType(event())) == {"": "not_json"}


content_values = (
    st.text(max_size=6)
    | st.sampled_from(
        ["sku_1", "Item 1", "product", " ", "a@b.co", "Zoë", "\ud800", "USD", "usd"]
    )
    | st.integers(min_value=-2, max_value=2**64)
    | st.booleans()
    | st.none()
    | st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2)
)
content_items = st.dictionaries(
    st.sampled_from(sorted(CONTENT_FIELDS)) | st.text(max_size=4),
    content_values,
    max_size=6,
)


@given(content_items, st.booleans())
@example({"id": "sku_1", "name": "Item 1", "quantity": 2, "amount": 5}, True)
@example({"id": "sku_1", "amount": 5, "currency": "gbp"}, False)
def test_an_item_passed_at_a_glance_has_no_problem_field_by_field(
    item, currency_inherited
):
    if data_rules._plainly_valid(item, currency_inherited=currency_inherited):
        issues = IssueCollector()
        data_rules._check_item_fields(item, "item", issues)
        data_rules._check_money(
            item, "item", issues, currency_inherited=currency_inherited
        )
        assert issues.issues == []
