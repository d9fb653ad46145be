"""The documentation's example project: the guides' app ``shop`` beside this app.

Every ```python block of docs/**/*.md runs here (tests/docs/test_pages.py), so the
pages' ``from shop.models import Order`` imports what the quickstart builds:
tests/docs/project is on ``sys.path`` and holds that app, named ``shop``. The database,
the OPENAI_CAPI_* test settings and the optional queue apps (whose commands the
deployment pages show) are the main session's; no test or example-project app is
installed, so no ``conversions.py`` but the pages' own is registered.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS as _MAIN_APPS

PROJECT = Path(__file__).resolve().parent / "project"
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))

INSTALLED_APPS = [
    app for app in _MAIN_APPS if not app.startswith(("tests.", "example_project."))
] + ["shop"]

# The quickstart's app has a migration, as the reader's gets from makemigrations: an
# unmigrated app's tables are made before the migrated apps' (auth_user), which
# PostgreSQL refuses for its foreign keys.

ROOT_URLCONF = "tests.docs.urls"
