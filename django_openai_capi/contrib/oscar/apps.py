from __future__ import annotations

import logging

from django.apps import AppConfig
from django.core import checks

logger = logging.getLogger("django_openai_capi.contrib.oscar")


class OscarConfig(AppConfig):
    name = "django_openai_capi.contrib.oscar"
    # Not "oscar": that is django-oscar's own label.
    label = "openai_capi_oscar"
    verbose_name = "OpenAI Conversions API: django-oscar orders"

    def ready(self) -> None:
        # Imported here: the tracking package imports this app's models, which
        # cannot be imported while the app registry is being populated.
        from django_openai_capi.contrib.oscar.checks import (
            check_oscar,
            conversion_class,
            order_model,
        )
        from django_openai_capi.exceptions import CapiConfigurationError
        from django_openai_capi.tracking.registry import register

        checks.register(check_oscar)
        try:
            model = order_model()
            conversion = conversion_class()
        except CapiConfigurationError as exc:
            # Not raised: manage.py check must get to report it (E001-E003) with its
            # hint, and it cannot if start-up fails first. Logged, because a server
            # that never runs the checks would otherwise drop every order's event
            # without a word.
            logger.error("Orders are not tracked: %s", exc)
            return
        register(model, conversion)
