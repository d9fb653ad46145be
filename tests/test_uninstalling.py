"""docs/uninstalling.md: `migrate django_openai_capi zero` takes the app's tables away
cleanly, and a later `migrate` brings them back."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

from django.test import SimpleTestCase

from tests.test_example_project import run_manage

APP_TABLES = {
    "django_openai_capi_conversionevent",
    "django_openai_capi_eventpayload",
    "django_openai_capi_deliverybatch",
    "django_openai_capi_pixelpause",
    "django_openai_capi_pixelalert",
}


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {name for (name,) in rows}


class UninstallingTests(SimpleTestCase):
    def test_migrating_the_app_to_zero_drops_its_tables_and_only_those(self):
        path = Path(self.enterContext(tempfile.TemporaryDirectory())) / "db.sqlite3"
        database = {"DATABASE_URL": f"sqlite:///{path}"}
        migrated = run_manage("migrate", "--no-input", **database)
        assert migrated.returncode == 0, migrated.stderr
        before = tables(path)
        assert before >= APP_TABLES

        unmigrated = run_manage(
            "migrate", "django_openai_capi", "zero", "--no-input", **database
        )

        assert unmigrated.returncode == 0, unmigrated.stderr
        assert tables(path) == before - APP_TABLES
        again = run_manage("migrate", "--no-input", **database)
        assert again.returncode == 0, again.stderr
        assert tables(path) == before
