"""The outbox row: made, and ``INSERT``-ed with a statement compiled once per database.

Every tracked save runs this inside the host's transaction, so it is what tracking
adds to a checkout. Django's ORM would build the same SQL afresh for every row (a
query, a compiler, each field's placeholder and conversion): here the text is made
once, by that same compiler, and each row only has its values converted.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from operator import attrgetter
from typing import Any

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field
from django.db.models.constants import OnConflict
from django.db.models.sql.subqueries import InsertQuery

from django_openai_capi.models import ConversionEvent

# How each column's value is converted for the driver, by the field's type.
_TEXT = "text"  # a str is sent as it is
_DATETIME = "datetime"  # an aware UTC datetime goes straight to the backend's adapter
_OTHER = "other"  # the field's own get_db_prep_save

_KINDS = {"CharField": _TEXT, "TextField": _TEXT, "DateTimeField": _DATETIME}


def _defaults() -> tuple[tuple[str, bool, object], ...]:
    """Each column's name, whether its default is a callable, and the default."""
    plan = []
    for field in ConversionEvent._meta.concrete_fields:
        made = field.has_default() and callable(field.default)
        plan.append(
            (field.attname, made, field.default if made else field.get_default())
        )
    return tuple(plan)


_DEFAULTS = _defaults()


def new_event(**values: object) -> ConversionEvent:
    """``ConversionEvent(**values)``, made the quicker way Django loads rows.

    The model takes every column's value in order as positional arguments without
    looking each keyword up among its fields; the defaults of the others are filled
    in here. Fields whose default is the same callable share one call: the columns
    defaulting to ``timezone.now`` hold one instant, the time of recording.
    """
    made: dict[Callable[[], object], object] = {}
    row: list[Any] = []
    for name, is_callable, default in _DEFAULTS:
        if name in values:
            row.append(values.pop(name))
        elif is_callable:
            assert callable(default)
            if default not in made:
                made[default] = default()
            row.append(made[default])
        else:
            row.append(default)
    if values:
        raise TypeError(f"ConversionEvent has no field {', '.join(sorted(values))}")
    # The stubs take the model's arguments by keyword only; Django takes them in order too.
    return ConversionEvent(*row)  # type: ignore[misc]


class CompiledInsert:
    """``INSERT ... ON CONFLICT DO NOTHING`` of a ``ConversionEvent`` on one database."""

    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        opts = ConversionEvent._meta
        self.fields: tuple[Field[Any, Any], ...] = tuple(
            field for field in opts.concrete_fields if field is not opts.pk
        )
        self.kinds = tuple(
            _KINDS.get(field.get_internal_type(), _OTHER) for field in self.fields
        )
        # What save() would write: pre_save's value, read straight from the instance
        # where the field does nothing more (all but the date fields).
        self.reads: tuple[Callable[[ConversionEvent], object], ...] = tuple(
            attrgetter(field.attname)
            if type(field).pre_save is Field.pre_save
            else partial(field.pre_save, add=True)
            for field in self.fields
        )
        query = InsertQuery(ConversionEvent, on_conflict=OnConflict.IGNORE)
        # The SQL of one row holds a placeholder per column whatever the values: the
        # text made for an empty row is the text for every row.
        query.insert_values(self.fields, [ConversionEvent()])
        ((self.sql, template),) = query.get_compiler(connection=connection).as_sql()
        # A column written as SQL instead (a db_default's DEFAULT) would need this
        # module to learn it: said at once, by the first insert of any test.
        assert len(template) == len(self.fields), "a column without a parameter"

    def params(
        self, event: ConversionEvent, connection: BaseDatabaseWrapper
    ) -> list[Any]:
        """The values of *event*'s columns as the driver takes them."""
        params: list[Any] = []
        # Several columns hold the same instant (see new_event): converted once.
        times: dict[datetime, object] = {}
        for field, kind, read in zip(self.fields, self.kinds, self.reads, strict=True):
            value = read(event)  # auto_now fields get their time here
            if value is None or (kind is _TEXT and isinstance(value, str)):
                params.append(value)
            elif kind is _DATETIME and type(value) is datetime and value.tzinfo is UTC:
                # Aware, so get_db_prep_save's checks of naive values would only
                # repeat themselves before calling this.
                if value not in times:
                    times[value] = connection.ops.adapt_datetimefield_value(value)
                params.append(times[value])
            else:
                params.append(field.get_db_prep_save(value, connection))
        return params


_compiled: dict[tuple[str, str], CompiledInsert] = {}


def insert_ignoring_conflict(event: ConversionEvent, *, using: str) -> bool:
    """Insert *event* unless its (pixel, type, id) exists; True if a row was written."""
    connection = connections[using]
    key = (connection.alias, connection.vendor)
    compiled = _compiled.get(key)
    if compiled is None:
        compiled = _compiled[key] = CompiledInsert(connection)
    # Not QuerySet.bulk_create(ignore_conflicts=True): it cannot tell whether the row
    # was written, and callers (and their tests) need to know.
    with connection.cursor() as cursor:
        cursor.execute(compiled.sql, compiled.params(event, connection))
        inserted: bool = cursor.rowcount == 1
    return inserted
