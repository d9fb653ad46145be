"""The auth app's checks, and which conversion it registers (OPENAI_CAPI_USER_CONVERSION)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.core import checks

from django_openai_capi.contrib.auth.apps import DEFAULT_CONVERSION
from django_openai_capi.contrib.auth.checks import check_auth
from django_openai_capi.contrib.auth.conversions import UserConversion
from django_openai_capi.contrib.auth.setting import register_user_conversion
from django_openai_capi.tracking.registry import registry


class SignUpConversion(UserConversion):
    """A project's own: sign-ups go to another pixel."""

    pixel_id = "signups-pixel"


class NotAConversion:
    pass


HERE = "tests.contrib.auth.test_setup"
HINT = (
    "Set OPENAI_CAPI_USER_CONVERSION to the dotted path of a subclass of "
    "django_openai_capi.contrib.auth.conversions.UserConversion "
    "(e.g. 'myproject.conversions.SignUpConversion'), or remove it to use that class "
    "as it ships."
)


def test_a_project_that_installs_what_the_app_needs_passes_its_checks() -> None:
    assert check_auth() == []


def test_the_check_runs_with_manage_py_check() -> None:
    registered: list[object] = list(checks.registry.registry.get_checks())

    assert check_auth in registered


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (
            f"{HERE}.Missing",
            f"OPENAI_CAPI_USER_CONVERSION = '{HERE}.Missing' cannot be imported: "
            + f'ImportError: Module "{HERE}" does not define a "Missing" attribute/class.',
        ),
        (
            f"{HERE}.NotAConversion",
            f"OPENAI_CAPI_USER_CONVERSION = '{HERE}.NotAConversion' is not a "
            + "ModelConversion subclass.",
        ),
        (
            UserConversion,
            "OPENAI_CAPI_USER_CONVERSION = <class 'django_openai_capi.contrib.auth."
            + "conversions.UserConversion'> is not a dotted path (a string).",
        ),
    ],
)
def test_a_setting_that_names_no_conversion_is_an_error(
    settings: Any, value: object, problem: str
) -> None:
    settings.OPENAI_CAPI_USER_CONVERSION = value

    assert check_auth() == [
        checks.Error(problem, hint=HINT, id="django_openai_capi.auth.E002")
    ]


def test_the_setting_names_the_class_registered(settings: Any) -> None:
    settings.OPENAI_CAPI_USER_CONVERSION = f"{HERE}.SignUpConversion"

    with registry.override(User, None):
        conversion = register_user_conversion(DEFAULT_CONVERSION)

        assert registry.get(User) is conversion
        assert type(conversion) is SignUpConversion
    assert check_auth() == []


def test_a_bad_setting_registers_nothing_and_says_so_in_the_log(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.OPENAI_CAPI_USER_CONVERSION = f"{HERE}.NotAConversion"

    with registry.override(User, None), caplog.at_level(logging.ERROR):
        assert register_user_conversion(DEFAULT_CONVERSION) is None
        assert registry.get(User) is None

    assert caplog.messages == [
        "No sign-up conversion is registered: OPENAI_CAPI_USER_CONVERSION = "
        + f"'{HERE}.NotAConversion' is not a ModelConversion subclass. Run manage.py check."
    ]


@pytest.mark.parametrize(
    "missing", [["django_openai_capi"], ["django.contrib.auth", "django_openai_capi"]]
)
def test_an_app_it_needs_that_is_not_installed_is_an_error(
    monkeypatch: pytest.MonkeyPatch, missing: list[str]
) -> None:
    monkeypatch.setattr(apps, "is_installed", lambda name: name not in missing)
    named = ", ".join(repr(name) for name in missing)

    assert check_auth() == [
        checks.Error(
            f"django_openai_capi.contrib.auth needs {named} in INSTALLED_APPS.",
            hint=f"Add {named} to INSTALLED_APPS: no sign-up is recorded without it.",
            id="django_openai_capi.auth.E001",
        )
    ]


@pytest.mark.parametrize(
    "absent",
    [
        # With the allauth app too, allauth.E003 says which to keep.
        "django_openai_capi.contrib.allauth",
        # Without the core app nothing records a save; without auth, no user model.
        "django_openai_capi",
    ],
)
def test_ready_registers_nothing_when_it_cannot_work(
    monkeypatch: pytest.MonkeyPatch, absent: str
) -> None:
    installed = apps.is_installed
    if absent == "django_openai_capi.contrib.allauth":
        monkeypatch.setattr(
            apps, "is_installed", lambda name: name == absent or installed(name)
        )
    else:
        monkeypatch.setattr(
            apps, "is_installed", lambda name: name != absent and installed(name)
        )

    with registry.override(User, None):
        apps.get_app_config("openai_capi_auth").ready()

        assert registry.get(User) is None


def test_ready_registers_the_apps_conversion() -> None:
    with registry.override(User, None):
        apps.get_app_config("openai_capi_auth").ready()

        assert type(registry.get(User)) is UserConversion
