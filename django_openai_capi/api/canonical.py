"""The one JSON encoding of events: what is stored is byte for byte what is sent."""

from __future__ import annotations

import json

# One encoder for every call: json.dumps with these options would build a new one each
# time. It keeps no state between calls, so threads can share it.
_ENCODER = json.JSONEncoder(
    sort_keys=True,
    separators=(",", ":"),
    ensure_ascii=False,
    allow_nan=False,
)


def dumps(value: object) -> str:
    """Sorted keys, no spaces, UTF-8 text (not \\u escapes), and never NaN or Infinity."""
    return _ENCODER.encode(value)
