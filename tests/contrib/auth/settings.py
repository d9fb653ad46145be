"""A new project on ``django.contrib.auth``'s ``User``, with sign-ups tracked by
``django_openai_capi.contrib.auth`` and no ``conversions.py`` of its own.

The database, the ``OPENAI_CAPI_*`` test settings and the middleware (the app's among
them) are the main suite's; the apps are a new project's.
"""

from __future__ import annotations

from tests.settings import *  # noqa: F403

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django_openai_capi",
    "django_openai_capi.contrib.auth",
]
# Nothing here enqueues a task (OPENAI_CAPI_DISPATCH = "none").
TASKS = {}

ROOT_URLCONF = "tests.contrib.auth.urls"
