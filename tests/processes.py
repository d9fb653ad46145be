"""Worker processes for the crash and concurrency tests.

A worker is ``manage.py openai_capi_send`` in a process of its own, on the test
database its parent created (tests/settings.py reads ``CAPI_TEST_*``), sending to a
fake API the test serves on loopback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.db import connections

ROOT = Path(__file__).resolve().parent.parent


def worker_env(endpoint: str, **overrides: object) -> dict[str, str]:
    """The environment of a worker: the test database, *endpoint*, and settings."""
    env = dict(os.environ)
    env.update(
        # The session's own (pytest-django sets it from --ds or the ini file): a
        # contrib session's workers load its project. Not settings.SETTINGS_MODULE,
        # which is None under override_settings.
        DJANGO_SETTINGS_MODULE=os.environ["DJANGO_SETTINGS_MODULE"],
        CAPI_TEST_DATABASE_NAME=str(connections["default"].settings_dict["NAME"]),
        CAPI_TEST_ENDPOINT=endpoint,
        PYTHONPATH=str(ROOT),
    )
    env.update(
        {f"CAPI_TEST_{name.upper()}": str(value) for name, value in overrides.items()}
    )
    return env


def start_worker(
    *args: str, endpoint: str, **overrides: object
) -> subprocess.Popen[str]:
    """Start ``openai_capi_send`` with *args*; its output is kept for assertions."""
    return subprocess.Popen(
        [sys.executable, "-m", "django", "openai_capi_send", "--skip-checks", *args],
        cwd=ROOT,
        env=worker_env(endpoint, **overrides),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
