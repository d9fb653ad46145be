"""``python -m django_openai_capi.testing``: see :mod:`django_openai_capi.testing.cli`."""

from __future__ import annotations

from django_openai_capi.testing.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
