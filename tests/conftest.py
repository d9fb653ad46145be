from __future__ import annotations

import pytest
from django.db import connections


def pytest_report_header(config: pytest.Config) -> str:
    database = connections["default"]
    return f"database: {database.vendor} ({database.settings_dict['NAME']})"


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    if connections["default"].vendor == "postgresql":
        return
    skip_postgres = pytest.mark.skip(
        reason="needs PostgreSQL: set DATABASE_URL=postgres://USER@HOST:PORT/NAME"
    )
    for item in items:
        if item.get_closest_marker("postgres"):
            item.add_marker(skip_postgres)
