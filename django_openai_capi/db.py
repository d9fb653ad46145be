"""What the outbox's own SQL needs of a database, asked in one place.

The claim and the build step each write rows and need to know which ones they won:
with ``UPDATE ... RETURNING`` where the database has it, else by locking the rows
first; every statement that lists ids keeps under the database's parameter limit.
Kept apart from the claim, the build and the outcomes, so that none imports another.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import BooleanField, Model, QuerySet
from django.db.models.expressions import RawSQL


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


#: Parameters kept free beside the ids in one statement: the SET clause, and the CASE
#: of a retry (two per distinct attempt count, up to MAX_ATTEMPTS of them).
RESERVED_PARAMS = 100


def chunked(pks: Sequence[int], using: str) -> Iterable[Sequence[int]]:
    """*pks* in pieces small enough for one statement's parameters."""
    limit = connections[using].features.max_query_params
    size = len(pks) if limit is None else max(1, limit - RESERVED_PARAMS)
    for start in range(0, len(pks), size or 1):
        yield pks[start : start + size]


_Row = TypeVar("_Row", bound=Model)


def within_index(rows: QuerySet[_Row], name: str) -> QuerySet[_Row]:
    """*rows*, within the partial index *name* of their model, so that SQLite uses it.

    SQLite uses a partial index only when the query repeats the index's condition with
    its values written in, not passed as parameters (as Django passes ``status=...``):
    without this, a count of failed events reads the whole table. The condition is
    the schema editor's own rendering, the text ``CREATE INDEX`` wrote, so it cannot
    drift from the migration. Unqualified column names: for queries of that one table.
    """
    model = rows.model
    (index,) = (i for i in model._meta.indexes if i.name == name)
    connection = connections[rows.db]
    connection.ensure_connection()  # PostgreSQL quotes a value with the connection
    editor = connection.SchemaEditorClass(connection)
    written = str(index._get_condition_sql(model, editor))
    # Not user input: the model's own index definition, quoted by the database.
    condition = RawSQL(written, (), output_field=BooleanField())  # noqa: S611
    return rows.filter(condition)
