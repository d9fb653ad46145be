"""``OPENAI_CAPI_USER_CONVERSION``: which sign-up conversion the user apps register.

Shared by ``contrib.auth`` and ``contrib.allauth``: each reads the setting here with
its own class as the default, and its check reports what :func:`setting_problem` finds.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model

from django_openai_capi.conf import conf
from django_openai_capi.contrib import hosts
from django_openai_capi.exceptions import CapiConfigurationError
from django_openai_capi.tracking.conversion import ModelConversion
from django_openai_capi.tracking.registry import registry

SETTING = "OPENAI_CAPI_USER_CONVERSION"

logger = logging.getLogger("django_openai_capi.contrib")


def conversion_class(default: str) -> type[ModelConversion[Any]]:
    """The class to register: the one the setting names, else *default*.

    Raises :class:`CapiConfigurationError` naming the setting and its value.
    """
    return hosts.conversion_class(SETTING, conf.OPENAI_CAPI_USER_CONVERSION, default)


def setting_problem(default: str) -> str | None:
    """What is wrong with ``OPENAI_CAPI_USER_CONVERSION``, naming its value; or None.

    Unset, nothing: the app's own class is not the setting's fault (a missing
    django-allauth is the app's E001, said once).
    """
    if conf.OPENAI_CAPI_USER_CONVERSION is None:
        return None
    try:
        conversion_class(default)
    except CapiConfigurationError as exc:
        return str(exc)
    return None


def register_user_conversion(default: str) -> ModelConversion[Any] | None:
    """Register the configured conversion for ``AUTH_USER_MODEL``, if it can be.

    A setting that cannot work registers nothing, so that ``manage.py check`` can
    start and say why (the app's check reports it as an Error); the log says so too,
    for a server that runs no checks.
    """
    try:
        conversion = conversion_class(default)
    except CapiConfigurationError as exc:
        logger.error(
            "No sign-up conversion is registered: %s Run manage.py check.", exc
        )
        return None
    return registry.register(get_user_model(), conversion)
