from __future__ import annotations

from oscar.apps.order.admin import *  # noqa: F403  # Oscar's admin, as generated
