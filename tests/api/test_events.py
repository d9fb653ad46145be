from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import pytest

from django_openai_capi.api import (
    build_event,
    canonical,
    encode_event,
    encode_request,
    validate_request,
)
from django_openai_capi.api.events import strip_empty
from django_openai_capi.exceptions import EventValidationError

NOW = 1_790_000_000_000
NOW_DT = datetime.fromtimestamp(NOW / 1000, tz=UTC)


def order(**kwargs):
    defaults = {
        "event_id": "shop.order:1",
        "event_time": NOW,
        "action_source": "web",
        "source_url": "https://shop.example.com/thanks",
        "now": NOW,
    }
    return build_event("order_created", **{**defaults, **kwargs})


def test_data_type_comes_from_the_event_type():
    assert order()["data"] == {"type": "contents"}
    assert build_event("subscription_created", event_id="s1", now=NOW, event_time=NOW)[
        "data"
    ] == {"type": "plan_enrollment"}


def test_a_matching_data_type_is_accepted_and_a_different_one_refused():
    assert order(data={"type": "contents"})["data"] == {"type": "contents"}
    with pytest.raises(EventValidationError) as caught:
        order(data={"type": "customer_action"})
    assert caught.value.paths == ["data.type"]


def test_event_time_may_be_an_aware_datetime():
    assert (
        order(event_time=NOW_DT - timedelta(hours=1))["timestamp_ms"] == NOW - 3_600_000
    )


def test_a_naive_datetime_is_refused():
    with pytest.raises(EventValidationError, match="timezone-aware"):
        order(event_time=datetime(2026, 11, 1, 12, 0))


def test_event_time_defaults_to_now():
    assert order(event_time=None)["timestamp_ms"] == NOW


def test_empty_optional_fields_are_stripped():
    event = order(
        oppref="",
        opt_out=False,
        user={"email": None, "city": ""},
        custom_event_name=None,
        data={"contents": [{"id": "a", "name": "", "variant_dict": {}}]},
    )
    assert event == {
        "id": "shop.order:1",
        "type": "order_created",
        "timestamp_ms": NOW,
        "action_source": "web",
        "source_url": "https://shop.example.com/thanks",
        "data": {"type": "contents", "contents": [{"id": "a"}]},
    }


def test_opt_out_true_is_sent():
    assert order(opt_out=True)["opt_out"] is True


def test_currency_codes_are_uppercased():
    event = order(
        data={
            "amount": 100,
            "currency": "eur",
            "contents": [{"id": "a", "amount": 100, "currency": "chf"}],
        }
    )
    assert event["data"]["currency"] == "EUR"
    assert event["data"]["contents"][0]["currency"] == "CHF"


def test_identity_and_event_problems_are_reported_together():
    with pytest.raises(EventValidationError) as caught:
        order(user={"email": "nope"}, data={"amount": "10.5"}, source_url=None)
    assert caught.value.paths == [
        "user.email",
        "source_url",
        "data.amount",
        "data.currency",
    ]


def test_the_built_event_passes_the_validator():
    event = order(
        user={"email": "a@example.com", "country": "fr"},
        data={"amount": 2599, "currency": "USD"},
    )
    validate_request({"events": [event]}, now=NOW)


def test_strip_empty_keeps_falsy_values_that_carry_meaning_and_list_items():
    event = {
        "id": "e",
        "opt_out": False,
        "oppref": "",
        "user": {"obref": None},
        "data": {"amount": 0, "contents": [None, {"id": "a", "name": ""}]},
    }
    assert strip_empty(event) == {
        "id": "e",
        "opt_out": False,
        "data": {"amount": 0, "contents": [None, {"id": "a"}]},
    }


def test_values_inside_custom_fields_are_sent_as_given():
    event = build_event(
        "custom",
        event_id="c1",
        custom_event_name="quote",
        event_time=NOW,
        now=NOW,
        data={
            "dropped": None,
            "blank": "",
            "meta": {"a": None, "b": "", "c": []},
            "tags": [None, ""],
        },
    )
    assert event["data"] == {
        "type": "custom",
        "meta": {"a": None, "b": "", "c": []},
        "tags": [None, ""],
    }


def test_a_naive_datetime_is_one_problem_not_two():
    with pytest.raises(EventValidationError) as caught:
        order(event_time=datetime(2026, 11, 1, 12, 0))
    assert caught.value.codes == ["naive_datetime"]


def test_currency_case_folding_is_ascii_only():
    with pytest.raises(EventValidationError) as caught:
        order(data={"amount": 100, "currency": "ınr"})
    assert caught.value.paths == ["data.currency"]


def test_a_mapping_json_cannot_encode_is_refused_not_crashed():
    from types import MappingProxyType

    with pytest.raises(EventValidationError) as caught:
        build_event(
            "custom",
            event_id="c1",
            custom_event_name="quote",
            event_time=NOW,
            now=NOW,
            data={"meta": MappingProxyType({"a": 1})},
        )
    assert caught.value.codes == ["not_json"]


class TestEncoding:
    def test_canonical_json_is_deterministic(self):
        first = order(
            data={"amount": 5, "currency": "USD"},
            user={"email": "a@example.com", "city": "Zürich"},
        )
        second = dict(reversed(list(first.items())))
        assert encode_event(first) == encode_event(second)
        assert encode_event(first).startswith(
            '{"action_source":"web","data":{"amount":5,"currency":"USD","type":"contents"}'
        )
        assert "Zürich" in encode_event(first)

    def test_nan_is_never_encoded(self):
        with pytest.raises(ValueError):
            encode_event({"x": float("nan")})

    def test_request_body_is_assembled_from_stored_json(self):
        events = [encode_event(order(event_id=f"e{i}")) for i in range(3)]
        body = encode_request(
            events, validate_only=True, integration_source=" Acme_Measurement "
        )
        parsed = json.loads(body)
        assert parsed["validate_only"] is True
        assert parsed["integration_source"] == "acme_measurement"
        assert [e["id"] for e in parsed["events"]] == ["e0", "e1", "e2"]
        validate_request(parsed, now=NOW)

    def test_request_body_without_integration_source(self):
        body = encode_request([encode_event(order())])
        assert json.loads(body).keys() == {"events", "validate_only"}

    @pytest.mark.parametrize("count", [0, 1001])
    def test_request_takes_one_to_a_thousand_events(self, count):
        with pytest.raises(ValueError, match="1 to 1000"):
            encode_request(['{"id":"x"}'] * count)

    def test_a_bad_integration_source_is_refused(self):
        with pytest.raises(EventValidationError) as caught:
            encode_request(
                [encode_event(order())], integration_source="acme measurement"
            )
        assert caught.value.paths == ["integration_source"]


def test_sub_millisecond_times_round_down_exactly():
    moment = NOW_DT.replace(microsecond=999_999)
    assert (
        order(event_time=moment, now=NOW + 1000)["timestamp_ms"]
        == (NOW // 1000) * 1000 + 999
    )


def test_a_tzinfo_with_an_impossible_offset_is_refused_not_crashed():
    from datetime import tzinfo

    class Broken(tzinfo):
        def utcoffset(self, dt):
            return timedelta(hours=30)

        def dst(self, dt):
            return None

        def tzname(self, dt):
            return "broken"

    with pytest.raises(EventValidationError) as caught:
        order(event_time=datetime(2026, 11, 1, tzinfo=Broken()))
    assert caught.value.codes == ["naive_datetime"]


def test_a_request_is_assembled_from_a_list_of_encoded_events_only():
    with pytest.raises(TypeError):
        encode_request(encode_event(order()))
    with pytest.raises(TypeError):
        encode_request([{"id": "x"}])  # type: ignore[list-item]


class TestWhatJsonCannotEncode:
    """A built event is encoded once, for its stored text: what JSON cannot encode is
    refused while building, by the path of the value."""

    def build(self, **data):
        return build_event(
            "custom",
            event_id="c1",
            custom_event_name="quote",
            event_time=NOW,
            now=NOW,
            data=data,
        )

    def test_a_mapping_that_is_not_a_dict_is_refused_where_it_is(self):
        with pytest.raises(EventValidationError) as caught:
            self.build(meta={"inner": MappingProxyType({"a": 1})})
        assert caught.value.paths == ["data.meta.inner"]
        assert caught.value.codes == ["not_json"]
        assert "a mappingproxy, not a dict" in str(caught.value)

    def test_a_variant_dict_that_is_not_a_dict_is_refused_where_it_is(self):
        with pytest.raises(EventValidationError) as caught:
            order(
                data={
                    "contents": [
                        {"id": "a", "variant_dict": MappingProxyType({"size": "M"})}
                    ]
                }
            )
        assert caught.value.paths == ["data.contents[0].variant_dict"]
        assert caught.value.codes == ["not_json"]

    def test_a_custom_field_name_that_is_not_unicode_text_is_refused(self):
        with pytest.raises(EventValidationError) as caught:
            self.build(**{"a\ud800": 1})
        assert caught.value.paths == ["data.<key>"]
        assert caught.value.codes == ["invalid_type"]


class TestCanonicalJson:
    """dumps() runs json's C encoder directly: the same text and the same refusals as
    json.dumps with the same options, and as JSONEncoder where there is no C encoder."""

    SAMPLE = [
        {"b": 1, "a": [1.5, -0.0, 2**70, True, None], "é": "Zürich \u2028 \ud83d"},
        "a lone string",
        [],
    ]

    @pytest.mark.parametrize("with_c_encoder", [True, False])
    def test_the_text_is_json_dumps_with_the_canonical_options(
        self, monkeypatch, with_c_encoder
    ):
        if not with_c_encoder:
            monkeypatch.setattr(canonical, "c_make_encoder", None)
        expected = json.dumps(
            self.SAMPLE,
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        )
        assert canonical.dumps(self.SAMPLE) == expected

    @pytest.mark.parametrize("with_c_encoder", [True, False])
    def test_the_refusals_are_json_dumps_refusals(self, monkeypatch, with_c_encoder):
        if not with_c_encoder:
            monkeypatch.setattr(canonical, "c_make_encoder", None)
        cycle: list[object] = []
        cycle.append(cycle)
        with pytest.raises(ValueError, match="Out of range float"):
            canonical.dumps({"x": float("inf")})
        with pytest.raises(ValueError, match="Circular reference"):
            canonical.dumps(cycle)
        with pytest.raises(TypeError, match="not JSON serializable"):
            canonical.dumps({"x": {1, 2}})
        # A refusal leaves nothing behind for the next encoding.
        assert canonical.dumps([1]) == "[1]"


class Liar(str):
    """Text whose own methods say it is plain ASCII."""

    def isascii(self) -> bool:
        return True

    def encode(self, *args: object, **kwargs: object) -> bytes:
        return b"ascii"


@pytest.mark.parametrize(
    "where",
    [
        {"user": {"city": Liar("Par\ud800is")}},
        {"data": {"contents": [{"id": "a", "name": Liar("\ud800")}]}},
        {"source_url": Liar("https://shop.example.com/\ud800")},
    ],
    ids=["raw identity", "content text", "source url"],
)
def test_text_is_judged_by_its_characters_not_by_its_own_methods(where):
    # A built event is not encoded to prove that it can be: the rules' own view of
    # each string is the proof, and a subclass cannot talk its way past it.
    with pytest.raises(EventValidationError):
        order(**where)


class Shifty(str):
    """Text whose own strip() and lower() answer other text than its characters."""

    def strip(self, chars: str | None = None) -> str:
        return self if chars is None else str.strip(self, chars)

    def lower(self) -> str:
        return "someone@example.com"


class Surrogate(str):
    """Text whose own strip() answers a lone surrogate."""

    def strip(self, chars: str | None = None) -> str:
        return "\ud800"


@pytest.mark.parametrize(
    "user",
    [
        {"email": Shifty("a" * 64)},
        {"external_id": [Shifty("b" * 64)]},
        {"city": Surrogate("Paris")},
        {"user_agent": Surrogate("Mozilla/5.0")},
    ],
    ids=["digest lower()", "digest in a list", "geo strip()", "scalar strip()"],
)
def test_identity_is_normalised_from_its_characters_not_its_own_methods(user):
    # build_event no longer runs check_user on what collect_user returns: a subclass's
    # strip() or lower() must not put a raw address or a lone surrogate in the user.
    try:
        event = order(user=user)
    except EventValidationError:
        return
    for values in event.get("user", {}).values():
        for value in values if isinstance(values, list) else [values]:
            assert type(value) is str
            value.encode("utf-8")
            assert "@" not in value


class _ItemsSaysMore(Mapping[str, object]):
    """A mapping whose own items() yields a key its keys() and [] do not have."""

    def __init__(self, known: dict[str, object]) -> None:
        self.known = known

    def __getitem__(self, key: str) -> object:
        return self.known[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.known)

    def __len__(self) -> int:
        return len(self.known)

    def items(self) -> list[tuple[str, object]]:  # type: ignore[override]
        return [*self.known.items(), ("ghost", None)]


class _IteratesEmpty(list[object]):
    def __iter__(self) -> Iterator[object]:
        return iter(())


def test_strip_empty_judges_its_own_copy_of_a_mapping():
    # A KeyError from strip_empty, not an EventValidationError, once it deleted the
    # keys that the mapping's items() named from a copy made by keys() and [].
    event = order(data={"contents": [_ItemsSaysMore({"id": "sku-1", "quantity": 1})]})
    assert event["data"]["contents"] == [{"id": "sku-1", "quantity": 1}]


def test_contents_that_iterate_to_nothing_are_stripped_as_empty():
    # As before the speed-ups: stored without "contents", not with "contents": [].
    event = order(
        data={
            "amount": 100,
            "currency": "USD",
            "contents": _IteratesEmpty([{"id": "a"}]),
        }
    )
    assert "contents" not in event["data"]


def _claims(name: str, chars: str) -> str:
    """Text of *chars* whose own __eq__ and __hash__ say it is *name*."""

    class Claims(str):
        def __hash__(self) -> int:
            return hash(name)

        def __eq__(self, other: object) -> bool:
            return True

        def __ne__(self, other: object) -> bool:
            return False

    return Claims(chars)


@pytest.mark.parametrize(
    "where",
    [
        {"action_source": _claims("web", "w\ud800")},
        {"data": {_claims("amount", "a\ud800"): 1, "currency": "USD"}},
        {"data": {"contents": [{_claims("name", "n\ud800"): "x"}]}},
        {"data": {"contents": [{_claims("name", "quantity"): "x"}]}},
    ],
    ids=["action source", "data key", "content key", "content key, other name"],
)
def test_names_are_looked_up_by_their_characters(where):
    # build_event no longer encodes the event to prove it can: a name that only claims
    # to be a known one must be refused by its path, not fail the encoding later.
    with pytest.raises(EventValidationError):
        order(**where)


class _EqualsAll(str):
    __hash__ = str.__hash__

    def __eq__(self, other: object) -> bool:
        return True


@pytest.mark.parametrize(
    "data",
    [
        {"c": {_EqualsAll("a"): 1, _EqualsAll("b"): {}}},
        {_EqualsAll("x"): 1, _EqualsAll("y"): {}},
        {"contents": [{_EqualsAll("id"): "a", _EqualsAll("quantity"): 1}]},
    ],
    ids=["inside a custom field", "a custom field", "a content item's fields"],
)
def test_names_that_do_not_sort_as_text_are_refused_by_their_path(data):
    # json sorts keys with their own __eq__ and __lt__: refused before, by the
    # encoding check build_event no longer runs, and a TypeError from encode_event
    # after it.
    with pytest.raises(EventValidationError, match="not_json"):
        build_event(
            "custom",
            event_id="c1",
            custom_event_name="signup",
            data=data,
            now=NOW,
            event_time=NOW,
        )
