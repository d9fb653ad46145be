"""The rules of the API's ``user`` object: digests where digests belong, raw values elsewhere."""

from __future__ import annotations

from django_openai_capi.api import spec
from django_openai_capi.api.identity import Rejected, normalize_raw
from django_openai_capi.api.issues import IssueCollector, join
from django_openai_capi.api.values import MAPPING, describe, is_text


def check_user(user: object, path: str, issues: IssueCollector) -> None:
    """Check the API form of ``user``: hashes only where hashes belong, raw geo elsewhere."""
    if not isinstance(user, MAPPING):
        issues.add(path, "invalid_type", f"must be an object, got {describe(user)}")
        return
    for key, value in user.items():
        field_path = join(path, key)
        if not isinstance(key, str):
            issues.add(field_path, "unknown_field", "field names must be strings")
        elif key in spec.HASHED_USER_FIELDS:
            for item_path, item in _list_items(value, field_path, issues):
                if not (isinstance(item, str) and spec.SHA256_HEX_RE.fullmatch(item)):
                    issues.add(
                        item_path,
                        "raw_identifier",
                        f"must be a lowercase hex SHA-256 digest, never a raw identifier (got {describe(item)})",
                    )
        elif key in spec.GEO_USER_FIELDS:
            for item_path, item in _list_items(value, field_path, issues):
                _check_raw_value(spec.GEO_USER_FIELDS[key], item, item_path, issues)
        elif key in spec.SCALAR_USER_FIELDS:
            _check_raw_value(key, value, field_path, issues)
        else:
            issues.add(
                field_path,
                "unknown_field",
                f"is not a user field; use {', '.join(sorted(spec.USER_FIELDS))}",
            )


def _list_items(
    value: object, path: str, issues: IssueCollector
) -> list[tuple[str, object]]:
    if not isinstance(value, list):
        issues.add(
            path, "invalid_type", f"must be a list of strings, got {describe(value)}"
        )
        return []
    return [(f"{path}[{index}]", item) for index, item in enumerate(value)]


def _check_raw_value(
    key: str, value: object, path: str, issues: IssueCollector
) -> None:
    # The same rules as when identity is built, so a hand-made user object and a built
    # one can never be judged differently.
    if not is_text(value):
        issues.add(
            path, "invalid_type", f"must be a non-empty string, got {describe(value)}"
        )
        return
    try:
        normalized = normalize_raw(key, value)
    except Rejected as rejected:
        issues.add(path, rejected.code, rejected.message)
        return
    if normalized != value:
        # What is checked is what is sent: " 203.0.113.7\n" would pass the rule and
        # then go out as it is.
        issues.add(
            path,
            "not_normalized",
            "must be sent as build_user() sends it: trimmed, countries in capitals",
        )
