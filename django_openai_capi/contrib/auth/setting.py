"""``OPENAI_CAPI_USER_CONVERSION``: which sign-up conversion the user apps register.

Shared by ``contrib.auth`` and ``contrib.allauth``: each reads the setting here with
its own class as the default, and its check reports what :func:`setting_problem` finds.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.utils.module_loading import import_string

from django_openai_capi.conf import conf
from django_openai_capi.redaction import describe_exception
from django_openai_capi.tracking.conversion import ModelConversion
from django_openai_capi.tracking.registry import registry

SETTING = "OPENAI_CAPI_USER_CONVERSION"

logger = logging.getLogger("django_openai_capi.contrib")


def conversion_path(default: str) -> str:
    """The dotted path of the class to register: the setting's, else *default*."""
    path = conf.OPENAI_CAPI_USER_CONVERSION
    return default if path is None else path


def setting_problem() -> str | None:
    """What is wrong with ``OPENAI_CAPI_USER_CONVERSION``, naming its value; or None."""
    path: object = conf.OPENAI_CAPI_USER_CONVERSION
    if path is None:
        return None
    if not isinstance(path, str):
        return f"{SETTING} = {path!r} is not a dotted path (a string)."
    try:
        found = import_string(path)
    except Exception as exc:
        return f"{SETTING} = {path!r} cannot be imported: {describe_exception(exc)}."
    if not (isinstance(found, type) and issubclass(found, ModelConversion)):
        return f"{SETTING} = {path!r} is not a ModelConversion subclass."
    return None


def register_user_conversion(default: str) -> ModelConversion[Any] | None:
    """Register the configured conversion for ``AUTH_USER_MODEL``, if it can be.

    A setting that cannot work registers nothing, so that ``manage.py check`` can
    start and say why (the app's check reports it as an Error); the log says so too,
    for a server that runs no checks.
    """
    problem = setting_problem()
    if problem is not None:
        logger.error(
            "No sign-up conversion is registered: %s Run manage.py check.", problem
        )
        return None
    return registry.register(get_user_model(), import_string(conversion_path(default)))
