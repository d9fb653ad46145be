"""What the outbox's SQL asks of the database."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from django_openai_capi.db import locked
from django_openai_capi.models import ConversionEvent


@pytest.mark.parametrize(
    ("has_lock", "skip"), [(True, True), (True, False), (False, False)]
)
def test_claims_lock_rows_where_the_database_can(
    db: None, has_lock: bool, skip: bool
) -> None:
    features = SimpleNamespace(
        has_select_for_update=has_lock, has_select_for_update_skip_locked=skip
    )
    connection: Any = SimpleNamespace(features=features)
    query = locked(ConversionEvent.objects.all(), connection)

    assert query.query.select_for_update is has_lock
    assert query.query.select_for_update_skip_locked is skip
