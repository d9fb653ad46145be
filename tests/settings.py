"""Settings for the test suite: SQLite by default, PostgreSQL when DATABASE_URL is set."""

from __future__ import annotations

import importlib.util
import os
import tempfile
from typing import Any

import dj_database_url
import django

SECRET_KEY = "NOTASECRET"

ALLOWED_HOSTS: list[str] = []

DATABASES: dict[str, dict[str, Any]]
if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": dict(dj_database_url.parse(os.environ["DATABASE_URL"]))}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": ":memory:",
            # A file, not memory: the crash and concurrency tests run workers in
            # other processes, which must see the test database.
            "TEST": {
                "NAME": os.path.join(
                    tempfile.gettempdir(),
                    f"django_openai_capi_test_{os.getpid()}.sqlite3",
                )
            },
        }
    }
# Set by tests/processes.py for a worker process started by a test: it uses the test
# database its parent created, under the name it has there.
if os.environ.get("CAPI_TEST_DATABASE_NAME"):
    DATABASES["default"]["NAME"] = os.environ["CAPI_TEST_DATABASE_NAME"]
    DATABASES["default"].pop("TEST", None)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django_openai_capi",
    "tests.testapp",
    # The example project's apps, so that their conversions are tested as they ship.
    "example_project.shop",
    "example_project.accounts",
    "example_project.billing",
]

# The Tasks framework, for OPENAI_CAPI_DISPATCH = "task": built into Django 6, an app
# of its own (the backport) on 5.2. django-tasks-db is the real backend, a queue in the
# database with a db_worker command, that the dispatch tests enqueue to and run.
if not importlib.util.find_spec("django.tasks") and importlib.util.find_spec(
    "django_tasks"
):
    INSTALLED_APPS.append("django_tasks")
if importlib.util.find_spec("django_tasks_db"):
    INSTALLED_APPS.append("django_tasks_db")
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

# The queues shops run, for tests/dispatch/test_queues.py and test_several_hosts.py:
# RQ through django-tasks-rq on Redis, Celery through django-tasks-fennel on RabbitMQ.
# Installed whenever present, so that the test process can switch TASKS to them with
# the settings fixture; a worker process started by a test picks its backend from
# CAPI_TEST_TASKS_BACKEND (tests/processes.py).
# Redis and RabbitMQ are shared with other test runs: each session claims a Redis
# database of its own (tests/queues.py), and names its Celery queue after its pid.
if importlib.util.find_spec("django_tasks_rq"):
    INSTALLED_APPS.append("django_rq")
    RQ_QUEUES = {
        "default": {
            "HOST": "127.0.0.1",
            "PORT": 6379,
            "DB": int(os.environ.get("CAPI_TEST_REDIS_DB", "15")),
        }
    }
if importlib.util.find_spec("django_tasks_fennel"):
    INSTALLED_APPS.append("django_tasks_fennel")
    CELERY_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
    # The Tasks framework enqueues on the queue named "default"; tests/celery_app.py
    # routes that name to this broker queue, so runs do not consume each other's jobs.
    CAPI_TEST_CELERY_QUEUE = os.environ.get(
        "CAPI_TEST_CELERY_QUEUE", f"capi-test-{os.getpid()}"
    )
TASK_BACKENDS = {
    "db": "django_tasks_db.DatabaseBackend",
    "rq": "django_tasks_rq.RQBackend",
    "celery": "django_tasks_fennel.CeleryBackend",
}
if os.environ.get("CAPI_TEST_TASKS_BACKEND"):
    TASKS = {
        "default": {"BACKEND": TASK_BACKENDS[os.environ["CAPI_TEST_TASKS_BACKEND"]]}
    }
# django-health-check (the [health] extra) and the check of delivery for it, tested
# with the real package (tests/contrib).
if importlib.util.find_spec("health_check"):
    INSTALLED_APPS += ["health_check", "django_openai_capi.contrib.health_check"]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Installed as a host installs it, so that every view test runs through it.
    "django_openai_capi.middleware.OpenAICapiMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "tests.urls"

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

USE_TZ = True
# The live server (the browser test) serves static files under it, and needs one.
STATIC_URL = "static/"

# Port 9 (discard) on loopback: nothing in the unit tests can reach a real host, and a
# test that forgets to mock HTTP fails fast with a connection error.
OPENAI_CAPI_ENDPOINT = os.environ.get(
    "CAPI_TEST_ENDPOINT", "http://127.0.0.1:9/v1/events"
)
OPENAI_CAPI_API_KEY = "test-key"
OPENAI_CAPI_PIXEL_ID = "test-pixel"
# A worker process started by a test (tests/processes.py) gets short leases and
# timeouts, so that a killed worker's batch comes back within the test.
OPENAI_CAPI_LEASE_SECONDS = int(os.environ.get("CAPI_TEST_LEASE_SECONDS", "300"))
OPENAI_CAPI_TIMEOUT = float(os.environ.get("CAPI_TEST_TIMEOUT", "10"))
OPENAI_CAPI_RETRY_BACKOFF = float(os.environ.get("CAPI_TEST_RETRY_BACKOFF", "30"))
OPENAI_CAPI_BATCH_SIZE = int(os.environ.get("CAPI_TEST_BATCH_SIZE", "1000"))
# Tests send explicitly; nothing is sent as a side effect of a commit.
OPENAI_CAPI_DISPATCH = "none"
# A broken conversion fails the test that made it (the project's own advice for tests);
# tests of the recorded-as-failed path turn it off.
OPENAI_CAPI_RAISE_ERRORS = True

# Django 6.1 configures email as MAILERS (the test runner swaps each for the in-memory
# backend); without it, every mail_admins() warns that 2028 will have no default mailer.
if django.VERSION >= (6, 1):
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend"}}
