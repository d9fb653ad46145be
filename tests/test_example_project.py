from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.test import SimpleTestCase

ROOT = Path(__file__).resolve().parent.parent


def run_check(**environ: str) -> subprocess.CompletedProcess[str]:
    # A clean environment: none of the caller's settings may leak into the project.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OPENAI_CAPI_", "DJANGO_"))
        and key not in {"DATABASE_URL", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS"}
    }
    env.update(environ)
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class ExampleProjectTests(SimpleTestCase):
    def test_check_passes_with_defaults(self):
        result = run_check()

        assert result.returncode == 0, result.stderr
        assert "System check identified no issues" in result.stdout

    def test_check_reports_setting_from_environment(self):
        result = run_check(OPENAI_CAPI_BATCH_SIZE="5000")

        assert result.returncode != 0
        assert "django_openai_capi.E010" in result.stderr

    def test_unparsable_environment_value_names_the_variable(self):
        result = run_check(OPENAI_CAPI_VALIDATE_ONLY="ture")

        assert result.returncode != 0
        assert "OPENAI_CAPI_VALIDATE_ONLY='ture' is not valid" in result.stderr
