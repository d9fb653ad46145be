"""A new Oscar shop's URLs: the storefront (basket, checkout, accounts) at the root."""

from __future__ import annotations

from django.apps import apps
from django.urls import include, path

urlpatterns = [
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include(apps.get_app_config("oscar").urls[0])),  # type: ignore[attr-defined]
]
