"""Upkeep of the outbox: backfilling missing events, deleting old finished rows.

The library functions under the ``openai_capi_backfill`` and ``openai_capi_cleanup``
management commands, usable from code (a scheduled task, a data migration) as well.
"""

from __future__ import annotations
