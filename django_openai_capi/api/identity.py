"""Identity: raw values in, the API's ``user`` object out.

Normalisation follows the Conversions API docs exactly, because the browser pixel and
every other integration hash the same person the same way only if they all do; a
one-character difference silently breaks matching and nothing reports an error.
Raw email addresses, phone numbers, external ids and names never leave this module:
they are hashed here, and an error message never repeats them.
"""

from __future__ import annotations

import difflib
import hashlib
import ipaddress
import re
from collections.abc import Callable, Mapping
from functools import partial
from typing import Final

from django_openai_capi.api import spec
from django_openai_capi.api.issues import IssueCollector, join
from django_openai_capi.api.values import MAPPING, describe, encodable, given, plain

#: The keys ``ModelConversion.get_user`` and ``track(user=...)`` accept.
IDENTITY_KEYS: Final = (
    "email",
    "phone",
    "external_id",
    "first_name",
    "last_name",
    "city",
    "region",
    "postal_code",
    "country",
    "ip_address",
    "user_agent",
    "obref",
    "android_advertising_id",
)

_SHA256_HEX_ANY_CASE: Final = re.compile(r"[0-9a-fA-F]{64}")
# Character classes as regexes, so that the scan of a value runs in C, not per
# character in Python: \s is exactly str.isspace(), \w exactly str.isalnum() and "_"
# (tests/api/test_identity.py holds both over every code point).
# Whitespace, or a control character (Unicode category Cc: U+0000-U+001F, U+007F-U+009F).
_SPACE_OR_CONTROL: Final = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")
# Besides whitespace, the characters the docs strip from phone numbers.
_PHONE_SEPARATORS: Final = re.compile(r"[\s().-]+")
# Whitespace and ASCII punctuation (string.punctuation), what names lose.
_NAME_DROPPED: Final = re.compile(r"[\s!-/:-@\[-`{-~]+")
# Anything but a letter, a digit, a space or a hyphen.
_NOT_IN_POSTAL_CODE: Final = re.compile(r"[^\w \-]|_")
# A dotted-quad IPv4 address as ipaddress accepts it (no leading zeros): the common
# case, answered without building an address object; anything else goes to ipaddress.
_IPV4: Final = re.compile(
    r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
    r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
)


class Rejected(ValueError):
    """A raw identifier that cannot be normalised; ``args`` never include the value."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def normalize_email(value: str) -> str:
    email = value.strip().lower()
    local, at, domain = email.partition("@")
    if (
        not at
        or not local
        or not domain
        or "@" in domain
        # A control character (NUL above all) is no more part of an address than a
        # space is, and hashed in it would match nobody.
        or _SPACE_OR_CONTROL.search(email) is not None
    ):
        raise Rejected(
            "invalid_email",
            "must be an email address: one @ with text on both sides and no spaces "
            "or control characters",
        )
    return email


def normalize_phone(value: str) -> str:
    stripped = _PHONE_SEPARATORS.sub("", value)
    digits = stripped.removeprefix("+").lstrip("0")
    if not digits.isascii() or not digits.isdigit():
        raise Rejected(
            "invalid_phone",
            "must be a phone number of digits with its country code; only spaces, "
            "parentheses, periods, hyphens and a leading + may separate them",
        )
    if not 8 <= len(digits) <= 15:
        raise Rejected(
            "invalid_phone",
            f"must have 8 to 15 digits including the country code, got {len(digits)}",
        )
    return digits


def normalize_external_id(value: str) -> str:
    # Case is kept on purpose: the docs say so, and two peers that lowercase break
    # matching for case-sensitive customer ids.
    external_id = value.strip()
    if not external_id:
        raise Rejected("invalid_external_id", "is empty once trimmed")
    return external_id


def normalize_name(value: str) -> str:
    name = _NAME_DROPPED.sub("", value.lower())
    if not name:
        raise Rejected(
            "invalid_name",
            "has no letters left once whitespace and punctuation are removed",
        )
    return name


_NORMALIZERS: Final[dict[str, Callable[[str], str]]] = {
    "email": normalize_email,
    "phone": normalize_phone,
    "external_id": normalize_external_id,
    "first_name": normalize_name,
    "last_name": normalize_name,
}


def normalize(kind: str, value: str) -> str:
    """The normalised form of a raw identifier of ``kind`` (``email``, ``phone``, ...).

    Raises :class:`Rejected` (a ``ValueError``) for a value that cannot be normalised.
    """
    try:
        normalizer = _NORMALIZERS[kind]
    except (KeyError, TypeError):  # TypeError: an unhashable kind from untyped code
        raise ValueError(
            f"kind {given(kind)} is not a hashed identifier; use one of {sorted(_NORMALIZERS)}"
        ) from None
    if not isinstance(value, str):
        raise TypeError(f"{kind} must be a string, got {describe(value)}")
    return normalizer(value)


def hash_identifier(kind: str, value: str) -> str:
    """SHA-256, lowercase hex, of the normalised identifier.

    A value that already is a 64-character hex digest is taken as it is (lowercased), so
    projects that store hashes only can pass them through.
    """
    if not isinstance(value, str):
        raise TypeError(f"{kind} must be a string, got {describe(value)}")
    return _digest(partial(normalize, kind), value)


def _digest(normalizer: Callable[[str], str], value: str) -> str:
    stripped = value.strip()
    if len(stripped) == 64 and _SHA256_HEX_ANY_CASE.fullmatch(stripped) is not None:
        return stripped.lower()
    return hashlib.sha256(_utf8(normalizer(value))).hexdigest()


# A lone surrogate, which json.loads lets through from "\ud800" escapes.
_NOT_UNICODE: Final = ("invalid_text", "is not valid Unicode text")


def _utf8(value: str) -> bytes:
    try:
        return str.encode(value, "utf-8")  # str's own: see values.encodable
    except UnicodeEncodeError:
        raise Rejected(*_NOT_UNICODE) from None


def _geo_text(value: str) -> str:
    # Sent raw; the API itself trims, lowercases and caps cities and regions at 128
    # characters, so a longer value is not an error.
    return value.strip()


def _postal_code(value: str) -> str:
    code = value.strip()
    if _NOT_IN_POSTAL_CODE.search(code) is not None:
        raise Rejected(
            "invalid_postal_code",
            "may contain only letters, digits, spaces and hyphens",
        )
    if len(code) > spec.MAX_POSTAL_CODE_LENGTH:
        raise Rejected(
            "too_long", f"must be at most {spec.MAX_POSTAL_CODE_LENGTH} characters"
        )
    return code


def _country(value: str) -> str:
    code = value.strip()
    if not (code.isascii() and spec.COUNTRY_RE.fullmatch(code)):
        raise Rejected(
            "invalid_country",
            "must be a two-letter ISO 3166-1 country code such as 'US'",
        )
    return code.upper()


_GEO_NORMALIZERS: Final[dict[str, Callable[[str], str]]] = {
    "city": _geo_text,
    "region": _geo_text,
    "postal_code": _postal_code,
    "country": _country,
}


def normalize_ip_address(value: str) -> str:
    # Checked, then sent as given: the compressed form of an IPv4-mapped IPv6 address
    # differs between Python versions, and stored payloads must not.
    address = value.strip()
    if _IPV4.fullmatch(address) is not None:
        return address
    try:
        ipaddress.ip_address(address)
    except ValueError:
        valid = False
    else:
        valid = "%" not in address  # a zone id means nothing off the host
    if not valid:
        raise Rejected("invalid_ip_address", "must be an IPv4 or IPv6 address")
    return address


def _user_agent(value: str) -> str:
    return value.strip()


def _obref(value: str) -> str:
    # Opaque and forwarded unchanged, as the docs require; only blank values are refused
    # (and blank ones never reach here: they count as absent).
    return value


def normalize_advertising_id(value: str) -> str:
    gaid = value.strip()
    if not spec.UUID_RE.fullmatch(gaid):
        raise Rejected(
            "invalid_android_advertising_id",
            "must be an Android advertising id in UUID form",
        )
    return gaid


_SCALAR_NORMALIZERS: Final[dict[str, Callable[[str], str]]] = {
    "ip_address": normalize_ip_address,
    "user_agent": _user_agent,
    "obref": _obref,
    "android_advertising_id": normalize_advertising_id,
}


_RAW_NORMALIZERS: Final = {**_GEO_NORMALIZERS, **_SCALAR_NORMALIZERS}


def normalize_raw(key: str, value: str) -> str:
    """The form in which a raw (unhashed) identity value of ``key`` is sent.

    For ``city``, ``region``, ``postal_code``, ``country``, ``ip_address``,
    ``user_agent``, ``obref`` and ``android_advertising_id``; raises :class:`Rejected`.
    """
    if not encodable(value):
        raise Rejected(*_NOT_UNICODE)
    return _RAW_NORMALIZERS[key](value)


def _is_absent(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _unique_first(values: list[str]) -> list[str]:
    # Unique as the API sees them: it lowercases cities and regions before it takes the
    # first three, so "Paris" and "PARIS" would use up two places for one value.
    first: dict[str, str] = {}
    for value in values:
        first.setdefault(value.lower(), value)
    return list(first.values())[: spec.MAX_USER_LIST_VALUES]


def collect_user(
    identity: object, path: str, issues: IssueCollector
) -> dict[str, object]:
    """Build the ``user`` object from raw identity, recording problems in ``issues``.

    What it returns always passes :func:`~django_openai_capi.api.user_rules.check_user`
    (digests of 64 lowercase hex digits, raw values normalised, trimmed and valid
    UTF-8), so that ``build_event`` need not check it a second time; a property test
    holds it to that.
    """
    if identity is None:
        return {}
    if not isinstance(identity, MAPPING):
        issues.add(
            path,
            "invalid_type",
            f"must be a dict of identity values, got {describe(identity)}",
        )
        return {}
    user: dict[str, object] = {}
    for key, raw in identity.items():
        rule = _COLLECTED.get(key) if isinstance(key, str) else None
        if rule is None:
            issues.add(
                join(path, key), "unknown_identity_key", _unknown_key_message(key)
            )
            continue
        field, normalized_form, many = rule
        if isinstance(raw, str):  # the usual: one value, as a string
            # A plain str of the same characters: the normalisers call the value's own
            # strip() and lower(), and what they return is not checked again.
            raw = plain(raw)
            if raw.strip():
                try:
                    normalized = normalized_form(raw)
                except Rejected as rejected:
                    _refuse(rejected, raw, join(path, key), issues)
                else:
                    user[field] = [normalized] if many else normalized
        elif raw is None:
            continue
        elif many:
            _collect_list(user, field, normalized_form, raw, join(path, key), issues)
        else:
            issues.add(
                join(path, key),
                "invalid_type",
                f"must be a single string, got {describe(raw)}",
            )
    return user


def _collect_list(
    user: dict[str, object],
    field: str,
    normalized_form: Callable[[str], str],
    raw: object,
    path: str,
    issues: IssueCollector,
) -> None:
    if not isinstance(raw, list | tuple):
        issues.add(
            path,
            "invalid_type",
            f"must be a string or a list of strings, got {describe(raw)}",
        )
        return
    normalized = []
    for index, item in enumerate(raw):
        if isinstance(item, str):
            item = plain(item)
        if _is_absent(item):
            continue
        if not isinstance(item, str):
            issues.add(
                f"{path}[{index}]",
                "invalid_type",
                f"must be a string, got {describe(item)}",
            )
            continue
        try:
            normalized.append(normalized_form(item))
        except Rejected as rejected:
            _refuse(rejected, item, f"{path}[{index}]", issues)
    if normalized:
        user[field] = _unique_first(normalized)


def _refuse(rejected: Rejected, value: str, path: str, issues: IssueCollector) -> None:
    issues.add(path, rejected.code, f"{rejected.message} (got {describe(value)})")


def _unknown_key_message(key: object) -> str:
    message = f"is not an identity key; use {', '.join(IDENTITY_KEYS)}"
    if isinstance(key, str):
        if key in _USER_FIELD_FOR_KEY.values() and key not in spec.SCALAR_USER_FIELDS:
            source = next(k for k, field in _USER_FIELD_FOR_KEY.items() if field == key)
            return f"is a field of the API's user object; pass the raw value as {source!r} and it is normalised and hashed for you"
        close = difflib.get_close_matches(key, IDENTITY_KEYS, n=1)
        if close:
            return f"is not an identity key; did you mean {close[0]!r}?"
    return message


_USER_FIELD_FOR_KEY: Final[dict[str, str]] = {
    **{key: field for field, key in spec.HASHED_USER_FIELDS.items()},
    **{key: field for field, key in spec.GEO_USER_FIELDS.items()},
}

#: How each identity key is collected: its user field, its value's normalised form (a
#: digest, or the raw value as the API takes it), and whether the field is a list.
_COLLECTED: Final[dict[str, tuple[str, Callable[[str], str], bool]]] = {
    **{
        key: (field, partial(_digest, _NORMALIZERS[key]), True)
        for field, key in spec.HASHED_USER_FIELDS.items()
    },
    **{
        key: (field, partial(normalize_raw, key), True)
        for field, key in spec.GEO_USER_FIELDS.items()
    },
    **{
        key: (key, partial(normalize_raw, key), False)
        for key in spec.SCALAR_USER_FIELDS
    },
}
assert _COLLECTED.keys() == set(IDENTITY_KEYS)


def build_user(identity: Mapping[str, object] | None) -> dict[str, object]:
    """The API's ``user`` object from raw identity values.

    ``identity`` maps the keys of :data:`IDENTITY_KEYS` to a string or a list of strings.
    Emails, phones, external ids and names are normalised and hashed; geography, IP,
    user agent, ``obref`` and the Android advertising id are sent raw, as the API wants.
    Lists keep their first three unique values. Raises :class:`EventValidationError`
    listing every problem.
    """
    issues = IssueCollector()
    user = collect_user(identity, "user", issues)
    issues.raise_if_any()
    return user


__all__ = [
    "IDENTITY_KEYS",
    "Rejected",
    "build_user",
    "collect_user",
    "hash_identifier",
    "normalize",
]
