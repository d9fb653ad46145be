"""Small judgements about values from arbitrary JSON, shared by the validators."""

from __future__ import annotations

import re
import reprlib
from collections.abc import Collection, Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Final, TypeGuard

# Raw email addresses in free-text fields (a custom field, a product name, a URL's query
# string) are the usual way personal data leaks into conversion payloads.
# Text is split into tokens first and each token matched whole, with patterns that
# cannot backtrack: a regex search over free text was quadratic (1.8 s for 20 kB).
_TOKEN_BREAK: Final = re.compile(r"[\s/?&=:,;<>()\[\]\"'|“”‘’«»]+")
_EMAIL_TOKEN: Final = re.compile(r"[^@]+@(?:[^.@]+\.)+[A-Za-z]{2,}")


def looks_like_email(text: str) -> bool:
    if "@" not in text:
        return False
    return any(
        _EMAIL_TOKEN.fullmatch(token.rstrip("."))
        for token in _TOKEN_BREAK.split(text)
        if "@" in token
    )


#: For ``isinstance``: a dict, as nearly every mapping is, is found at once; another
#: ``Mapping`` through the slower check of the ABC.
MAPPING: Final = (dict, Mapping)

# Strings are repeated in errors only when they look like the names the field expects
# ("purchase", "DOLLAR"): an email address, a phone number or a 100 kB blob put in the
# wrong field is described instead, because errors end up in logs and the admin.
_NAME_LIKE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,39}")


def describe(value: object) -> str:
    """What was given, without the value itself: identity values are personal data."""
    if isinstance(value, str):
        return f"a string of {len(value)} characters"
    if isinstance(value, int) and not isinstance(value, bool):
        return "an integer"
    return f"a value of type {type(value).__name__}"


def given(value: object) -> str:
    """A short repr of a value for a field that holds names, numbers or flags."""
    if isinstance(value, str):
        return _given_str(value)
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value.bit_length() > 64
    ):
        return describe(value)
    try:
        return _REPR.repr(value)
    except ValueError:  # an int subclass too long to print (over 4,300 digits)
        return describe(value)


def _given_str(value: str) -> str:
    # str's own repr: a subclass's could print anything.
    return str.__repr__(value) if _NAME_LIKE.fullmatch(value) else describe(value)


class _ValueRepr(reprlib.Repr):
    """reprlib's short repr, with what it holds judged as :func:`given` judges a value.

    A string inside a list or a dict is shown only if it looks like a name, and an
    object that is not a number is named by its type: a dict put in the wrong field, or
    a model instance whose ``__str__`` is the customer's email address, would otherwise
    be printed into errors, which end up in logs and the admin.
    """

    def repr_str(self, x: str, level: int) -> str:
        return _given_str(x)

    def repr_instance(self, x: object, level: int) -> str:
        # The types reprlib has no method of its own for, subclasses included.
        if isinstance(x, str):
            return _given_str(x)
        if x is None or isinstance(x, bool):
            return repr(x)
        for kind in (int, float, complex, Decimal, Fraction):
            if isinstance(x, kind):
                # The type's own repr: a subclass's could print anything.
                text: str = kind.__repr__(x)
                if len(text) > self.maxother:
                    return f"{text[: self.maxother - 3]}..."
                return text
        return describe(x)


_REPR = _ValueRepr()
_REPR.maxstring = _REPR.maxother = 40
_REPR.maxlevel = 2


def encodable(value: str) -> bool:
    # str's own methods, not the value's: a subclass may answer anything, and json
    # writes the string's own characters. A built event is not encoded to prove that
    # it can be, so this is the proof for every string in it.
    if str.isascii(value):  # most text, answered without encoding it
        return True
    try:
        str.encode(value, "utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def one_of(value: object, allowed: Collection[str]) -> bool:
    # Values come from arbitrary JSON: a list or dict must not reach a hash lookup.
    # A subclass is looked up by its characters: its own __eq__ and __hash__ could
    # match a name it does not hold, and a built event is not encoded to prove it can be.
    if type(value) is str:
        return value in allowed
    return isinstance(value, str) and plain(value) in allowed


_ORDERING: Final = ("__eq__", "__lt__", "__gt__")


def sorts_as_text(key: str) -> bool:
    """Whether *key* compares as its characters do, as json's sorted keys need.

    A subclass's own ``__eq__`` or ``__lt__`` would decide the order, or fail it, in
    the encoding that a built event no longer gets before it is accepted.
    """
    kind = type(key)
    return kind is str or all(getattr(kind, m) is getattr(str, m) for m in _ORDERING)


def plain(value: str) -> str:
    """*value* as a str of the same characters, whatever its own methods answer."""
    return value if type(value) is str else str.__str__(value)


def is_text(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value.strip()) and encodable(value)
