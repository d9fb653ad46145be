"""The rules of an event's ``data``: its shape, money, content items and custom fields."""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Final

from django_openai_capi.api import spec
from django_openai_capi.api.issues import IssueCollector, join
from django_openai_capi.api.money import is_currency
from django_openai_capi.api.values import (
    MAPPING,
    describe,
    encodable,
    given,
    is_text,
    looks_like_email,
    one_of,
    plain,
    sorts_as_text,
)


def check_data(
    data: object, event_type: object, path: str, issues: IssueCollector
) -> None:
    if not isinstance(data, MAPPING):
        issues.add(path, "invalid_type", f"must be an object, got {describe(data)}")
        return
    data_type = data.get("type")
    expected = (
        spec.EVENT_DATA_TYPES.get(event_type) if isinstance(event_type, str) else None
    )
    type_path = join(path, "type")
    if data_type is None:
        issues.add(
            type_path,
            "missing_event_data_type",
            f"is required{f' and must be {expected!r}' if expected else ''}",
        )
    elif not one_of(data_type, spec.DATA_FIELDS):
        issues.add(
            type_path,
            "invalid_event_data_type",
            f"must be one of {', '.join(sorted(spec.DATA_FIELDS))}, got {given(data_type)}",
        )
    elif expected is not None and data_type != expected:
        issues.add(
            type_path,
            "invalid_event_data_type",
            f"must be {expected!r} for {event_type}, got {data_type!r}",
        )
    shape = data_type if one_of(data_type, spec.DATA_FIELDS) else expected
    allowed = (
        spec.DATA_FIELDS.get(shape, frozenset())
        if isinstance(shape, str)
        else frozenset()
    )

    for key, value in data.items():
        if not isinstance(key, str):
            issues.add(
                join(path, key),
                "invalid_type",
                f"field names must be strings, got {describe(key)}",
            )
            continue
        if not sorts_as_text(key):
            issues.add(join(path, key), *_UNSORTABLE_KEY)
            continue
        # Compared by its characters: a subclass's __eq__ could claim any name, and a
        # built event is not encoded to prove that its names are what they claim.
        key = plain(key)
        if key == "type" or key in allowed:
            continue
        if shape == "custom":
            if encodable(key):
                _check_custom_field(value, join(path, key), issues, depth=1)
            else:  # as a key inside a custom field is
                issues.add(
                    join(path, key),
                    "invalid_type",
                    "field names must be valid Unicode text",
                )
        elif shape is not None:
            issues.add(
                join(path, key),
                "field_not_allowed",
                _not_allowed_message(str(key), str(shape)),
            )

    _check_money(data, path, issues, currency_inherited=False)
    if (
        "plan_id" in data
        and shape in ("plan_enrollment", "custom")
        and not is_text(data["plan_id"])
    ):
        issues.add(
            join(path, "plan_id"),
            "invalid_type",
            f"must be a non-empty string, got {describe(data['plan_id'])}",
        )
    if "contents" in data and "contents" in allowed:
        _check_contents(
            data["contents"], join(path, "contents"), data.get("currency"), issues
        )


def _not_allowed_message(key: str, shape: str) -> str:
    if key == "contents":
        return f"is not allowed for data type {shape!r}"
    if key == "plan_id":
        return "is allowed only for data types 'plan_enrollment' and 'custom'"
    return f"is not a field of data type {shape!r}; custom fields are allowed only for type 'custom'"


def _check_money(
    container: Mapping[object, object],
    path: str,
    issues: IssueCollector,
    *,
    currency_inherited: bool,
) -> None:
    if "amount" in container:
        amount = container["amount"]
        if isinstance(amount, bool) or not isinstance(amount, int):
            hint = "" if isinstance(amount, bool) else _amount_hint(amount)
            issues.add(
                join(path, "amount"),
                "invalid_amount",
                f"must be an integer in the currency's minor unit, got {given(amount)}{hint}",
            )
        elif not 0 <= amount <= spec.MAX_INTEGER:
            issues.add(
                join(path, "amount"),
                "invalid_amount",
                f"must be from 0 to 2**63-1, got {given(amount)}",
            )
        if "currency" not in container and not currency_inherited:
            issues.add(
                join(path, "currency"),
                "missing_currency",
                "is required when amount is present",
            )
    if "currency" in container and not is_currency(container["currency"]):
        issues.add(
            join(path, "currency"),
            "invalid_currency",
            f"must be an ISO 4217 currency code such as 'USD', got {given(container['currency'])}",
        )


def _amount_hint(amount: object) -> str:
    if isinstance(amount, Decimal):
        # Only an event checked as given (validate_event) still holds one: an event
        # that is built has its Decimals converted already.
        return (
            " (an event built by track(), a ModelConversion or build_event() takes a "
            "Decimal in major units; to_minor_units() converts one by hand)"
        )
    return " (pass a Decimal in major units, a Money, or an int in minor units)"


def _check_contents(
    contents: object, path: str, currency: object, issues: IssueCollector
) -> None:
    if not isinstance(contents, list):
        issues.add(
            path,
            "invalid_type",
            f"must be a list of content items, got {describe(contents)}",
        )
        return
    currency_inherited = is_currency(currency)
    for index, item in enumerate(contents):
        item_path = f"{path}[{index}]"
        if not isinstance(item, MAPPING):
            issues.add(
                item_path,
                "invalid_type",
                f"a content item must be an object, got {describe(item)}",
            )
            continue
        if not _plainly_valid(item, currency_inherited=currency_inherited):
            _check_item_fields(item, item_path, issues)
            _check_money(item, item_path, issues, currency_inherited=currency_inherited)


_CONTENT_TEXT_FIELDS: Final = spec.CONTENT_STRING_FIELDS


def _plainly_valid(item: Mapping[object, object], *, currency_inherited: bool) -> bool:
    """Whether every field of *item* passes its rule at a glance.

    What nearly every item is: ASCII text without an "@" (what ``is_text`` passes and
    ``looks_like_email`` finds nothing in), a plain positive quantity, a plain amount
    with its currency (the item's, or the data's when it has none), tested in one loop
    without a call per field. Anything else (non-ASCII text, a ``variant_dict``, an odd
    type) is left to the rules field by field, which name the problem, or find none:
    this may doubt a valid item, never pass an invalid one.
    """
    if type(item) is not dict:
        return False
    for key, value in item.items():
        if type(key) is not str:  # a subclass's __eq__ could claim any name
            return False
        if key in _CONTENT_TEXT_FIELDS:
            if not (
                type(value) is str
                and "@" not in value
                and value.isascii()
                and value.strip()
            ):
                return False
        elif key == "quantity":
            if not (type(value) is int and 1 <= value <= spec.MAX_INTEGER):
                return False
        elif key == "amount":
            if not (type(value) is int and 0 <= value <= spec.MAX_INTEGER):
                return False
        elif key == "currency":
            if not is_currency(value):
                return False
        else:
            return False
    return "amount" not in item or "currency" in item or currency_inherited


def _check_item_fields(
    item: Mapping[object, object], item_path: str, issues: IssueCollector
) -> None:
    for key, value in item.items():
        if isinstance(key, str):
            if not sorts_as_text(key):
                issues.add(join(item_path, key), *_UNSORTABLE_KEY)
                continue
            key = plain(key)  # compared below by its characters
        if not one_of(key, spec.CONTENT_FIELDS):
            issues.add(
                join(item_path, key),
                "unknown_field",
                f"is not a content field; use {', '.join(sorted(spec.CONTENT_FIELDS))}",
            )
        elif key in _CONTENT_TEXT_FIELDS:
            if not is_text(value):
                issues.add(
                    join(item_path, key),
                    "invalid_type",
                    f"must be a non-empty string, got {describe(value)}",
                )
            elif looks_like_email(value):
                issues.add(
                    join(item_path, key),
                    "raw_identifier",
                    "contains what looks like an email address",
                )
        elif key == "quantity" and not (
            isinstance(value, int)
            and not isinstance(value, bool)
            and 1 <= value <= spec.MAX_INTEGER
        ):
            issues.add(
                join(item_path, key),
                "invalid_quantity",
                f"must be a positive integer, got {given(value)}",
            )
        elif key == "variant_dict":
            _check_variant_dict(value, join(item_path, key), issues)


def _check_variant_dict(value: object, path: str, issues: IssueCollector) -> None:
    if not isinstance(value, dict) and isinstance(value, Mapping):
        issues.add(path, *_not_json(value))
    elif not isinstance(value, dict) or not all(
        isinstance(k, str) and encodable(k) and isinstance(v, str) and encodable(v)
        for k, v in value.items()
    ):
        issues.add(
            path,
            "invalid_variant_dict",
            f"must map strings to strings, got {describe(value)}",
        )


_UNSORTABLE_KEY: Final = (
    "not_json",
    "cannot be encoded as JSON: a name whose type compares it other than by its text",
)


def _not_json(mapping: Mapping[object, object]) -> tuple[str, str]:
    # json encodes dicts only: a mapping of another type (a MappingProxyType) would
    # pass every other rule and then break the encoding of the whole event.
    return (
        "not_json",
        f"cannot be encoded as JSON: a {type(mapping).__name__}, not a dict",
    )


def _check_custom_field(
    value: object, path: str, issues: IssueCollector, *, depth: int
) -> None:
    """Custom fields take any JSON value: finite numbers, 64-bit integers, text with no
    email address in it, and objects and arrays of those, not too deeply nested."""
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if not -spec.MAX_INTEGER <= value <= spec.MAX_INTEGER:
            issues.add(path, "invalid_type", "must fit in a 64-bit integer")
    elif isinstance(value, float):
        if not math.isfinite(value):
            issues.add(path, "invalid_type", f"must be a finite number, got {value!r}")
    elif isinstance(value, str):
        if not encodable(value):
            issues.add(path, "invalid_type", "is not valid Unicode text")
        elif looks_like_email(value):
            issues.add(
                path,
                "raw_identifier",
                "contains what looks like an email address; hash it or leave it out",
            )
    elif not isinstance(value, dict) and isinstance(value, Mapping):
        issues.add(path, *_not_json(value))
    elif not isinstance(value, list | dict):
        issues.add(
            path,
            "invalid_type",
            "must be a JSON value (string, number, boolean, object, array or null), "
            f"got {describe(value)}",
        )
    elif depth >= spec.MAX_CUSTOM_DEPTH:
        issues.add(
            path, "too_deep", f"must not nest more than {spec.MAX_CUSTOM_DEPTH} levels"
        )
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_custom_field(item, f"{path}[{index}]", issues, depth=depth + 1)
    else:
        for key, item in value.items():
            if isinstance(key, str) and not sorts_as_text(key):
                issues.add(join(path, key), *_UNSORTABLE_KEY)
                continue
            if not isinstance(key, str) or not encodable(key):
                issues.add(
                    path,
                    "invalid_type",
                    f"object keys must be strings, got {describe(key)}",
                )
                continue
            _check_custom_field(item, join(path, key), issues, depth=depth + 1)
