from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.test import SimpleTestCase

ROOT = Path(__file__).resolve().parent.parent


def run_check(**environ: str) -> subprocess.CompletedProcess[str]:
    return run_manage("check", **environ)


def run_manage(*args: str, **environ: str) -> subprocess.CompletedProcess[str]:
    # A clean environment: none of the caller's settings may leak into the project.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OPENAI_CAPI_", "DJANGO_", "DEMO_"))
        and key not in {"DATABASE_URL", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS"}
    }
    env.update(environ)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
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

    def test_check_reports_each_misconfiguration_with_its_id(self):
        cases = {
            "django_openai_capi.E010": {"OPENAI_CAPI_BATCH_SIZE": "5000"},
            "django_openai_capi.E009": {"OPENAI_CAPI_DISPATCH": "celery"},
            "django_openai_capi.E006": {
                "OPENAI_CAPI_ENDPOINT": "http://capi.example.com/v1/events"
            },
            "django_openai_capi.E016": {
                "OPENAI_CAPI_INTEGRATION_SOURCE": "acme measurement"
            },
            "django_openai_capi.E002": {
                "OPENAI_CAPI_API_KEY": "sk-pasted with a space"
            },
        }
        for check_id, environ in cases.items():
            with self.subTest(check_id):
                result = run_check(**environ)

                assert result.returncode != 0
                assert check_id in result.stderr
                assert "sk-pasted" not in result.stderr + result.stdout

    def test_unparsable_environment_value_names_the_variable(self):
        result = run_check(OPENAI_CAPI_VALIDATE_ONLY="ture")

        assert result.returncode != 0
        assert "OPENAI_CAPI_VALIDATE_ONLY is not valid" in result.stderr

    def test_a_bad_pixel_api_keys_value_never_shows_a_key(self):
        result = run_check(OPENAI_CAPI_PIXEL_API_KEYS="px1=sk-secret-one,px2")

        assert result.returncode != 0
        assert "OPENAI_CAPI_PIXEL_API_KEYS" in result.stderr
        assert "sk-secret-one" not in result.stderr + result.stdout

    def test_the_endpoint_follows_demo_fake_port_unless_set_itself(self):
        def endpoint(**environ: str) -> str:
            result = run_manage(
                "shell",
                "--verbosity",
                "0",
                "--command",
                "from django.conf import settings; print(settings.OPENAI_CAPI_ENDPOINT)",
                **environ,
            )
            assert result.returncode == 0, result.stderr
            return result.stdout.strip()

        assert endpoint() == "http://127.0.0.1:8001/v1/events"
        assert endpoint(DEMO_FAKE_PORT="9123") == "http://127.0.0.1:9123/v1/events"
        assert (
            endpoint(
                DEMO_FAKE_PORT="9123",
                OPENAI_CAPI_ENDPOINT="https://bzr.openai.com/v1/events",
            )
            == "https://bzr.openai.com/v1/events"
        )

    def test_a_demo_fake_port_that_is_not_a_port_names_the_variable(self):
        result = run_check(DEMO_FAKE_PORT="80o1")

        assert result.returncode != 0
        assert "DEMO_FAKE_PORT is not valid: '80o1' is not a port number" in (
            result.stderr
        )
