"""Settings of the demo project, read from the environment with django-environ.

Every setting can be set by an environment variable of the same name, or in a ``.env``
file next to ``manage.py`` (real environment variables win). With none set, the demo
runs on SQLite and sends to a local fake of the Conversions API: no credentials needed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

from example_project.demo import fake_port

PROJECT_DIR = Path(__file__).resolve().parent
ROOT_DIR = PROJECT_DIR.parent

env = environ.Env()
if (ROOT_DIR / ".env").is_file():
    environ.Env.read_env(ROOT_DIR / ".env")

DEBUG = env.bool("DEBUG", default=True)

# DEMO ONLY: this default key is public. Set SECRET_KEY in the environment anywhere
# the project is reachable by anyone but you.
SECRET_KEY = env.str(
    "SECRET_KEY", default="django-insecure-demo-key-not-for-production"
)

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

DATABASES = {
    "default": env.db(
        "DATABASE_URL", default=f"sqlite:///{PROJECT_DIR / 'db.sqlite3'}"
    ),
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_openai_capi",
    # The demo's own apps: each has a conversions.py that registers its conversion.
    "example_project.shop",
    "example_project.accounts",
    "example_project.billing",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After authentication, so that a consent callable can read request.user: keeps
    # the landing URL's oppref in the __oppref cookie, and gives the events recorded
    # during a request the visitor's oppref, obref, IP, user agent and page.
    "django_openai_capi.middleware.OpenAICapiMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_project.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]

WSGI_APPLICATION = "example_project.wsgi.application"

USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"

# The storefront the demo's conversions say they happened on (their source_url), also
# for the orders, sign-ups and subscriptions made in the admin or by demo_data. See
# example_project/demo_site.py.
DEMO_SITE_ORIGIN = env.str("DEMO_SITE_ORIGIN", default="https://shop.example.com")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_openai_capi": {"handlers": ["console"], "level": "INFO"}},
}

# --- django-openai-capi ----------------------------------------------------------------
#
# DEMO DEFAULTS: the endpoint is the local fake of the Conversions API that `make demo`
# starts on 127.0.0.1:8001 (or on DEMO_FAKE_PORT: read here too, so that the endpoint
# moves with the fake), and the key and pixel are made up, so the demo needs no
# credentials and can never send to the real API by accident. To send for real, set
# OPENAI_CAPI_ENDPOINT to https://bzr.openai.com/v1/events and OPENAI_CAPI_API_KEY /
# OPENAI_CAPI_PIXEL_ID to yours.
DEMO_FAKE_PORT = fake_port(os.environ)
OPENAI_CAPI_ENDPOINT = env.str(
    "OPENAI_CAPI_ENDPOINT", default=f"http://127.0.0.1:{DEMO_FAKE_PORT}/v1/events"
)
OPENAI_CAPI_API_KEY = env.str("OPENAI_CAPI_API_KEY", default="demo-key")
OPENAI_CAPI_PIXEL_ID = env.str("OPENAI_CAPI_PIXEL_ID", default="demo-pixel")


def _bool(value: str) -> bool:
    # Stricter than environ's own bool cast, which reads any unknown word as False:
    # OPENAI_CAPI_VALIDATE_ONLY=ture must not quietly send for real.
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true/false, yes/no, on/off or 1/0")


def _timeout(value: str) -> float | tuple[float, float]:
    # "10" or "3.05,27" (connect, read), as requests takes it.
    parts = [float(part) for part in value.split(",")]
    if len(parts) == 2:
        return (parts[0], parts[1])
    if len(parts) == 1:
        return parts[0]
    raise ValueError("expected seconds, or connect,read seconds")


def _optional_str(value: str) -> str | None:
    return value or None


# The rest are set only when their variable is present, so that the app's own defaults
# stay in one place (django_openai_capi/conf.py). Values that parse are passed as they
# are: range checks are the app's, reported by `manage.py check`.
# OPENAI_CAPI_PIXEL_API_KEYS is written pixel=key,pixel=key.
# OPENAI_CAPI_TIMEOUT is seconds, or connect,read seconds.
# The demo is one process with no task worker: send right after each commit. A real
# site keeps the default, "task", with a Tasks backend that runs in a worker.
OPENAI_CAPI_DISPATCH = "inline"

_OPTIONAL_SETTINGS: dict[str, Callable[[str], Any]] = {
    "OPENAI_CAPI_PIXEL_API_KEYS": lambda value: env.parse_value(value, dict),
    "OPENAI_CAPI_SEND_ENABLED": _bool,
    "OPENAI_CAPI_VALIDATE_ONLY": _bool,
    "OPENAI_CAPI_DISPATCH": str,
    "OPENAI_CAPI_BATCH_SIZE": int,
    "OPENAI_CAPI_TIMEOUT": _timeout,
    "OPENAI_CAPI_MAX_ATTEMPTS": int,
    "OPENAI_CAPI_RETRY_BACKOFF": float,
    "OPENAI_CAPI_RETRY_BACKOFF_MAX": float,
    "OPENAI_CAPI_LEASE_SECONDS": int,
    "OPENAI_CAPI_INTEGRATION_SOURCE": _optional_str,
    "OPENAI_CAPI_RETENTION_DAYS": int,
}

for _name, _cast in _OPTIONAL_SETTINGS.items():
    if _name in env:
        try:
            globals()[_name] = env(_name, cast=_cast)
        except ValueError as exc:
            # Never the value itself: OPENAI_CAPI_PIXEL_API_KEYS holds API keys, and
            # this message ends up in deploy logs.
            reason = (
                "expected pixel=key,pixel=key"
                if _name == "OPENAI_CAPI_PIXEL_API_KEYS"
                else str(exc)
            )
            raise ImproperlyConfigured(
                f"Environment variable {_name} is not valid: {reason}"
            ) from None
