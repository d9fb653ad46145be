"""The one JSON encoding of events: what is stored is byte for byte what is sent."""

from __future__ import annotations

import json
from collections.abc import Callable
from json.encoder import encode_basestring
from typing import Any

# The json module's C encoder, where this Python has it (CPython does).
c_make_encoder: Callable[..., Callable[[Any, int], tuple[str, ...]]] | None = getattr(
    json.encoder, "c_make_encoder", None
)

# The options of the encoding, kept in one encoder: json.dumps with them would build a
# new one on every call. It keeps no state between calls, so threads can share it.
_ENCODER = json.JSONEncoder(
    sort_keys=True,
    separators=(",", ":"),
    ensure_ascii=False,
    allow_nan=False,
)


def dumps(value: object) -> str:
    """Sorted keys, no spaces, UTF-8 text (not \\u escapes), and never NaN or Infinity."""
    if c_make_encoder is None:  # a Python without the json module's C speedups
        return _ENCODER.encode(value)
    # What _ENCODER.encode runs for these options, without rebuilding its Python
    # helpers on every call: a C encoder with the same settings, given a fresh dict
    # of the containers being encoded (how it refuses a cycle). A test holds the
    # two to the same output and the same errors.
    encode = c_make_encoder(
        {},
        _ENCODER.default,
        encode_basestring,
        None,
        _ENCODER.key_separator,
        _ENCODER.item_separator,
        _ENCODER.sort_keys,
        _ENCODER.skipkeys,
        _ENCODER.allow_nan,
    )
    return "".join(encode(value, 0))
