"""The one JSON encoding of events: what is stored is byte for byte what is sent."""

from __future__ import annotations

import json


def dumps(value: object) -> str:
    """Sorted keys, no spaces, UTF-8 text (not \\u escapes), and never NaN or Infinity."""
    return json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
