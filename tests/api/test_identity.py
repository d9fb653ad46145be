from __future__ import annotations

import hashlib
import ipaddress
import string
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from django_openai_capi.api import build_user, hash_identifier, identity, normalize
from django_openai_capi.api.identity import Rejected
from django_openai_capi.exceptions import EventValidationError


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def issues_of(identity):
    with pytest.raises(EventValidationError) as caught:
        build_user(identity)
    return {issue.path: issue for issue in caught.value.issues}


class TestNormalize:
    def test_email_is_trimmed_and_lowercased(self):
        assert (
            normalize("email", "  Ada.Lovelace@Example.COM\n")
            == "ada.lovelace@example.com"
        )

    @pytest.mark.parametrize(
        "value", ["ada", "@example.com", "ada@", "ada lovelace@example.com", "a@b@c"]
    )
    def test_email_without_one_at_and_two_sides_is_rejected(self, value):
        with pytest.raises(Rejected, match="email address"):
            normalize("email", value)

    @pytest.mark.parametrize(
        "value",
        [
            "ada\x00@example.com",
            "ada@example.com\x00",
            "ada@exa\x07mple.com",
            "ada\x7f@x.io",
        ],
    )
    def test_email_with_a_nul_or_control_character_is_rejected_like_an_inner_space(
        self, value
    ):
        with pytest.raises(Rejected, match="no spaces or control characters"):
            normalize("email", value)

    def test_phone_keeps_digits_with_country_code(self):
        assert normalize("phone", "+44 (0)20.7946-0958") == "4402079460958"

    def test_phone_strips_leading_zeros_after_plus(self):
        assert normalize("phone", "0049 30 1234567") == "49301234567"

    @pytest.mark.parametrize(
        "value", ["+1 415 555 2671 ext 3", "415/555/2671", "١٢٣٤٥٦٧٨٩"]
    )
    def test_phone_with_other_characters_is_rejected(self, value):
        with pytest.raises(Rejected) as caught:
            normalize("phone", value)
        assert value not in str(caught.value)

    def test_external_id_keeps_case_and_inner_characters(self):
        assert normalize("external_id", "  CUST-00042 a ") == "CUST-00042 a"

    def test_names_drop_whitespace_and_ascii_punctuation_but_keep_non_ascii(self):
        assert normalize("first_name", " Jean-Luc\u00a0Émile ") == "jeanlucémile"
        assert (
            normalize("last_name", "O’Brien") == "o’brien"
        )  # a typographic apostrophe is not ASCII

    def test_a_name_of_only_punctuation_is_rejected(self):
        with pytest.raises(Rejected, match="no letters"):
            normalize("first_name", " -.' ")

    def test_unknown_kind_is_a_programming_error(self):
        with pytest.raises(ValueError, match="not a hashed identifier"):
            normalize("city", "Paris")


class TestHash:
    def test_hash_is_lowercase_sha256_hex_of_the_normalised_value(self):
        assert hash_identifier("email", " USER@example.com ") == sha("user@example.com")

    def test_an_existing_digest_is_taken_as_it_is(self):
        digest = sha("user@example.com")
        assert hash_identifier("email", digest) == digest
        assert hash_identifier("email", digest.upper()) == digest
        assert hash_identifier("phone", f" {digest} ") == digest


class TestBuildUser:
    def test_nothing_in_nothing_out(self):
        assert build_user(None) == {}
        assert build_user({}) == {}
        assert (
            build_user({"email": None, "phone": "", "city": "   ", "obref": None}) == {}
        )

    def test_hashed_fields_become_plural_lists(self):
        user = build_user(
            {
                "email": "a@example.com",
                "phone": "+1 415 555 2671",
                "external_id": "42",
                "first_name": "Ada",
                "last_name": "Lovelace",
            }
        )
        assert user == {
            "emails_sha256": [sha("a@example.com")],
            "phone_numbers_sha256": [sha("14155552671")],
            "external_ids_sha256": [sha("42")],
            "first_names_sha256": [sha("ada")],
            "last_names_sha256": [sha("lovelace")],
        }

    def test_lists_keep_the_first_three_unique_normalised_values_in_order(self):
        user = build_user(
            {"email": ["B@x.io", "a@x.io", "b@x.io", None, "", "c@x.io", "d@x.io"]}
        )
        assert user["emails_sha256"] == [sha("b@x.io"), sha("a@x.io"), sha("c@x.io")]

    def test_geography_is_sent_raw_and_trimmed(self):
        user = build_user(
            {
                "city": " San Francisco ",
                "region": "California",
                "postal_code": "94107",
                "country": " us ",
            }
        )
        assert user == {
            "cities": ["San Francisco"],
            "regions": ["California"],
            "postal_codes": ["94107"],
            "countries": ["US"],
        }

    def test_scalar_fields_are_sent_raw(self):
        user = build_user(
            {
                "ip_address": " 2001:DB8:0:0::1 ",
                "user_agent": " Mozilla/5.0 ",
                "obref": "opaque ref",
                "android_advertising_id": "38400000-8cf0-11bd-b23e-10b96e40000d",
            }
        )
        assert user == {
            "ip_address": "2001:DB8:0:0::1",
            "user_agent": "Mozilla/5.0",
            "obref": "opaque ref",
            "android_advertising_id": "38400000-8cf0-11bd-b23e-10b96e40000d",
        }

    def test_tuples_are_lists_too(self):
        assert build_user({"country": ("FR", "DE")}) == {"countries": ["FR", "DE"]}

    def test_every_problem_is_reported_with_its_path(self):
        found = issues_of(
            {
                "email": ["ok@example.com", "not-an-email"],
                "phone": "123",
                "country": "USA",
                "postal_code": "941#07",
                "ip_address": "999.1.1.1",
                "android_advertising_id": "nope",
                "user_agent": 5,
                "first_name": ["Ada", 7],
            }
        )
        assert {path: issue.code for path, issue in found.items()} == {
            "user.email[1]": "invalid_email",
            "user.phone": "invalid_phone",
            "user.country": "invalid_country",
            "user.postal_code": "invalid_postal_code",
            "user.ip_address": "invalid_ip_address",
            "user.android_advertising_id": "invalid_android_advertising_id",
            "user.user_agent": "invalid_type",
            "user.first_name[1]": "invalid_type",
        }

    def test_errors_never_repeat_a_personal_identifier(self):
        identity = {
            "email": "secret-person.example.com",
            "phone": "+1 555 12",
            "first_name": "!!!",
            "ip_address": "10.0.0.300",
        }
        with pytest.raises(EventValidationError) as caught:
            build_user(identity)
        text = str(caught.value)
        for value in identity.values():
            assert value not in text
        assert "a string of 25 characters" in text

    def test_unknown_keys_are_errors_not_dropped(self):
        found = issues_of(
            {
                "emial": "a@example.com",
                "emails_sha256": ["x"],
                "shoe_size": "44",
                3: "x",
            }
        )
        assert "did you mean 'email'" in found["user.emial"].message
        assert "pass the raw value as 'email'" in found["user.emails_sha256"].message
        assert found["user.shoe_size"].code == "unknown_identity_key"
        assert found["user.<key>"].code == "unknown_identity_key"

    def test_scalar_fields_take_one_string(self):
        assert (
            issues_of({"ip_address": ["1.2.3.4"]})["user.ip_address"].code
            == "invalid_type"
        )

    def test_identity_must_be_a_mapping(self):
        assert issues_of(["a@example.com"])["user"].code == "invalid_type"

    def test_postal_codes_are_at_most_32_characters(self):
        assert build_user({"postal_code": "9" * 32}) == {"postal_codes": ["9" * 32]}
        assert (
            issues_of({"postal_code": "9" * 33})["user.postal_code"].code == "too_long"
        )

    def test_long_cities_are_left_to_the_api_which_caps_them(self):
        assert build_user({"city": "x" * 300}) == {"cities": ["x" * 300]}

    def test_ip_addresses_are_checked_then_sent_as_given(self):
        # compressed forms of IPv4-mapped addresses differ between Python versions
        assert build_user({"ip_address": "::ffff:203.0.113.1"}) == {
            "ip_address": "::ffff:203.0.113.1"
        }
        assert (
            issues_of({"ip_address": "fe80::1%eth0"})["user.ip_address"].code
            == "invalid_ip_address"
        )

    def test_phones_lose_every_kind_of_whitespace(self):
        assert normalize("phone", "+1\u00a0415\u2009555\u00a02671") == "14155552671"

    def test_lone_surrogates_are_refused_not_crashed(self):
        found = issues_of(
            {
                "first_name": "\ud800",
                "email": ["a\udfff@example.com"],
                "city": "\ud800",
                "user_agent": "\ud800",
            }
        )
        assert {path: issue.code for path, issue in found.items()} == {
            "user.first_name": "invalid_text",
            "user.email[0]": "invalid_text",
            "user.city": "invalid_text",
            "user.user_agent": "invalid_text",
        }

    def test_a_key_that_is_not_a_plain_name_stays_out_of_the_path(self):
        found = issues_of({"ada@example.com": "x"})
        assert list(found) == ["user.<key>"]
        assert "ada@example.com" not in str(found["user.<key>"])

    def test_a_non_string_list_value_is_refused(self):
        assert issues_of({"email": 42})["user.email"].code == "invalid_type"


class TestPublicFunctionsRefuseMisuse:
    def test_a_blank_external_id_is_not_hashed_as_empty(self):
        with pytest.raises(Rejected):
            hash_identifier("external_id", "   ")

    def test_a_non_string_value_is_a_type_error(self):
        with pytest.raises(TypeError):
            hash_identifier("email", 123)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            normalize("email", None)  # type: ignore[arg-type]

    def test_swapped_arguments_do_not_echo_the_value(self):
        with pytest.raises(ValueError) as caught:
            normalize("jane.roe@example.com", "email")
        assert "jane.roe" not in str(caught.value)
        with pytest.raises(ValueError):
            normalize([], "x")  # type: ignore[arg-type]


def test_geo_lists_are_unique_as_the_api_sees_them():
    # the API lowercases cities before it takes three: PARIS would waste Lyon's place
    assert build_user({"city": ["Paris", "paris", "PARIS", "Lyon"]}) == {
        "cities": ["Paris", "Lyon"]
    }


class TestCharacterClasses:
    """The regexes that scan raw values in C stand for per-character rules of Python's:
    over every code point, each matches exactly the characters its rule names."""

    EVERY_CHARACTER = [chr(code) for code in range(0x110000)]

    @pytest.mark.parametrize(
        "pattern,rule",
        [
            (
                identity._SPACE_OR_CONTROL,
                lambda c: c.isspace() or unicodedata.category(c) == "Cc",
            ),
            (identity._PHONE_SEPARATORS, lambda c: c.isspace() or c in "().-"),
            (
                identity._NAME_DROPPED,
                lambda c: c.isspace() or c in string.punctuation,
            ),
            (identity._NOT_IN_POSTAL_CODE, lambda c: not (c.isalnum() or c in " -")),
        ],
        ids=["space_or_control", "phone_separators", "name_dropped", "postal_code"],
    )
    def test_each_class_matches_what_its_rule_names(self, pattern, rule):
        differ = [
            f"U+{ord(c):04X}"
            for c in self.EVERY_CHARACTER
            if (pattern.fullmatch(c) is not None) != rule(c)
        ]
        assert differ == []


@given(
    st.lists(
        st.sampled_from(["0", "1", "2", "5", "9", "25", "255", "256", "01", "300"]),
        min_size=1,
        max_size=5,
    ).map(".".join)
    | st.text(alphabet="0123456789.:abcdef%", max_size=20)
)
def test_a_dotted_quad_is_judged_as_ipaddress_judges_it(address):
    try:
        ipaddress.ip_address(address)
        valid = "%" not in address
    except ValueError:
        valid = False
    try:
        identity.normalize_ip_address(address)
    except Rejected:
        assert not valid
    else:
        assert valid
