from __future__ import annotations

from tests.contrib.signups import fake

__all__ = ["fake"]
