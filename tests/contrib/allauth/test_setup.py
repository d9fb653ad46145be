"""The allauth app's checks, and when it registers its conversion."""

from __future__ import annotations

import importlib.metadata
from typing import Any

import pytest
from django.apps import apps
from django.core import checks

from django_openai_capi.contrib.allauth.checks import check_allauth
from django_openai_capi.contrib.allauth.conversions import AllauthUserConversion
from django_openai_capi.tracking.registry import registry
from tests.contrib.allauth.members.models import Member

AUTH_APP = "django_openai_capi.contrib.auth"
INSTALL = "pip install 'django-allauth>=65'"


class SignUpConversion(AllauthUserConversion):
    """A project's own: sign-ups go to another pixel."""

    pixel_id = "signups-pixel"


@pytest.fixture
def allauth_version(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Set the version importlib.metadata reports for django-allauth (None: absent)."""
    real = importlib.metadata.version

    def use(version: str | None) -> None:
        def fake(name: str) -> str:
            if name != "django-allauth":
                return real(name)
            if version is None:
                raise importlib.metadata.PackageNotFoundError(name)
            return version

        monkeypatch.setattr(importlib.metadata, "version", fake)

    return use


def installed_apps(
    monkeypatch: pytest.MonkeyPatch, *, plus: str = "", minus: str = ""
) -> None:
    real = apps.is_installed
    monkeypatch.setattr(
        apps,
        "is_installed",
        lambda name: name == plus or (name != minus and real(name)),
    )


def test_a_project_that_installs_what_the_app_needs_passes_its_checks() -> None:
    assert check_allauth() == []
    registered: list[object] = list(checks.registry.registry.get_checks())
    assert check_allauth in registered


@pytest.mark.parametrize(
    ("version", "problem"),
    [
        (None, "django-allauth is not installed (65 or later is needed)"),
        ("64.2.1", "django-allauth 64.2.1 is installed; 65 or later is needed"),
        (
            "dev",
            "django-allauth's version 'dev' cannot be read (65 or later is needed)",
        ),
    ],
)
def test_allauth_missing_or_too_old_is_an_error(
    allauth_version: Any, version: str | None, problem: str
) -> None:
    allauth_version(version)

    assert check_allauth() == [
        checks.Error(
            f"django_openai_capi.contrib.allauth needs django-allauth: {problem}.",
            hint=f"{INSTALL}, or remove 'django_openai_capi.contrib.allauth' from "
            "INSTALLED_APPS (use 'django_openai_capi.contrib.auth' for sign-ups "
            "without allauth).",
            id="django_openai_capi.allauth.E001",
        )
    ]


def test_a_newer_allauth_is_fine(allauth_version: Any) -> None:
    allauth_version("66.0")

    assert check_allauth() == []


def test_allauth_account_not_installed_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    installed_apps(monkeypatch, minus="allauth.account")

    assert check_allauth() == [
        checks.Error(
            "django_openai_capi.contrib.allauth needs 'allauth.account' in "
            "INSTALLED_APPS.",
            hint="Add them as allauth's installation guide says: no sign-up is "
            "recorded without them.",
            id="django_openai_capi.allauth.E002",
        )
    ]


def test_both_sign_up_apps_installed_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    installed_apps(monkeypatch, plus=AUTH_APP)

    assert check_allauth() == [
        checks.Error(
            f"'{AUTH_APP}' and 'django_openai_capi.contrib.allauth' are both in "
            "INSTALLED_APPS; both record sign-ups of AUTH_USER_MODEL, so neither does.",
            hint=f"Remove '{AUTH_APP}': the allauth app records every new user the "
            "auth app would, with allauth's email addresses, phone and social names "
            "on top.",
            id="django_openai_capi.allauth.E003",
        )
    ]


def test_a_setting_that_names_no_conversion_is_an_error(settings: Any) -> None:
    settings.OPENAI_CAPI_USER_CONVERSION = "myproject.conversions.SignUp"

    (error,) = check_allauth()

    assert error.id == "django_openai_capi.allauth.E004"
    assert error.msg == (
        "OPENAI_CAPI_USER_CONVERSION = 'myproject.conversions.SignUp' cannot be "
        "imported: ModuleNotFoundError: No module named 'myproject'."
    )
    assert error.hint is not None
    assert error.hint.startswith(
        "Set OPENAI_CAPI_USER_CONVERSION to the dotted path of a subclass of "
        "django_openai_capi.contrib.allauth.conversions.AllauthUserConversion "
    )


def ready() -> None:
    apps.get_app_config("openai_capi_allauth").ready()


def test_ready_registers_the_apps_conversion() -> None:
    with registry.override(Member, None):
        ready()

        assert type(registry.get(Member)) is AllauthUserConversion


def test_ready_registers_the_class_the_setting_names(settings: Any) -> None:
    settings.OPENAI_CAPI_USER_CONVERSION = f"{__name__}.SignUpConversion"

    with registry.override(Member, None):
        ready()

        assert type(registry.get(Member)) is SignUpConversion


def test_ready_registers_nothing_without_a_usable_allauth(allauth_version: Any) -> None:
    allauth_version("0.61.1")

    with registry.override(Member, None):
        ready()

        assert registry.get(Member) is None


def test_ready_registers_nothing_beside_the_auth_app(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    installed_apps(monkeypatch, plus=AUTH_APP)

    with registry.override(Member, None):
        ready()

        assert registry.get(Member) is None
