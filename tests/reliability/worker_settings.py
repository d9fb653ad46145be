"""Settings of the reliability run's worker processes: the test settings, and then some.

tests/processes.py points a worker at the test database; the run adds its own API key
(a distinctive one, scanned for afterwards), a retry limit and backoff short enough to
settle within the test, and logging of everything, down to DEBUG, to stderr, so that
the scan sees every line a worker could log.
"""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403

OPENAI_CAPI_API_KEY = os.environ["CAPI_TEST_API_KEY"]
OPENAI_CAPI_MAX_ATTEMPTS = int(os.environ["CAPI_TEST_MAX_ATTEMPTS"])
OPENAI_CAPI_RETRY_BACKOFF_MAX = float(os.environ["CAPI_TEST_RETRY_BACKOFF_MAX"])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "level": "DEBUG",
        }
    },
    "root": {"handlers": ["stderr"], "level": "DEBUG"},
}
