"""What the outbox's own SQL needs of a database, asked in one place.

The claim and the build step each write rows and need to know which ones they won:
with ``UPDATE ... RETURNING`` where the database has it, else by locking the rows
first. Kept apart from both, so that neither imports the other.
"""

from __future__ import annotations

from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import QuerySet


def updates_return_rows(connection: BaseDatabaseWrapper) -> bool:
    """Whether *connection* has ``UPDATE ... RETURNING``.

    PostgreSQL, and SQLite from 3.35 (where one statement is atomic under the
    database's write lock, so no row lock is needed).
    """
    return connection.vendor == "postgresql" or (
        connection.vendor == "sqlite"
        and bool(connection.features.can_return_columns_from_insert)
    )


def locked(
    query: QuerySet[Any, Any], connection: BaseDatabaseWrapper
) -> QuerySet[Any, Any]:
    """*query* with row locks that skip rows another worker holds, where there are any."""
    features = connection.features
    if not features.has_select_for_update:
        return query
    return query.select_for_update(
        skip_locked=features.has_select_for_update_skip_locked
    )
