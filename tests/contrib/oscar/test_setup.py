"""What ``manage.py check`` and start-up say about the Oscar integration's setup."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from django.apps import apps
from django.core.management import call_command
from oscar.core.loading import get_model
from oscar.test.factories import create_order

from django_openai_capi.contrib.oscar.checks import check_oscar
from django_openai_capi.contrib.oscar.conversions import OrderConversion
from django_openai_capi.models import ConversionEvent
from django_openai_capi.tracking import build_pending
from django_openai_capi.tracking.registry import registry
from tests.contrib.oscar.custom import SkuOrderConversion

Order = get_model("order", "Order")
SETTING = "OPENAI_CAPI_OSCAR_CONVERSION"


def ids() -> list[str | None]:
    return [message.id for message in check_oscar()]


def test_a_new_oscar_shop_passes_the_checks_and_tracks_its_orders() -> None:
    call_command("check")  # raises on any error
    assert type(registry.get(Order)) is OrderConversion


@pytest.fixture
def oscar_version(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Pretend the installed django-oscar is another version, or (None) missing."""
    versions: dict[str, str] = {}
    real = importlib.metadata.version

    def version(name: str) -> str:
        if name == "django-oscar" and name in versions:
            if versions[name] == "missing":
                raise importlib.metadata.PackageNotFoundError(name)
            return versions[name]
        return real(name)

    monkeypatch.setattr(importlib.metadata, "version", version)
    yield versions


def test_e001_when_django_oscar_is_missing(oscar_version: dict[str, str]) -> None:
    oscar_version["django-oscar"] = "missing"

    (message,) = check_oscar()

    assert message.id == "django_openai_capi.oscar.E001"
    assert "django-oscar is not" in message.msg
    # The host package itself: the app may come from a checkout or a wheel, not PyPI.
    assert "pip install 'django-oscar>=4.2,<4.3'" in str(message.hint)


@pytest.mark.parametrize("version", ["4.1.3", "3.2"])
def test_e001_when_django_oscar_is_older_than_4_2(
    oscar_version: dict[str, str], version: str
) -> None:
    oscar_version["django-oscar"] = version

    (message,) = check_oscar()

    assert message.id == "django_openai_capi.oscar.E001"
    assert f"django-oscar {version} is installed; 4.2 or later is needed" in message.msg


def test_e001_when_the_version_cannot_be_read(oscar_version: dict[str, str]) -> None:
    oscar_version["django-oscar"] = "unknown"

    (message,) = check_oscar()

    assert message.id == "django_openai_capi.oscar.E001"
    assert "django-oscar's version 'unknown' cannot be read" in message.msg


@pytest.mark.parametrize("version", ["4.2", "4.2.1", "5.0rc1"])
def test_newer_oscars_pass(oscar_version: dict[str, str], version: str) -> None:
    oscar_version["django-oscar"] = version

    assert ids() == []


def test_e002_when_oscars_order_app_is_not_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_such_app(app_label: str, model_name: str) -> Any:
        raise LookupError(f"No installed app with label {app_label!r}.")

    monkeypatch.setattr("oscar.core.loading.get_model", no_such_app)

    (message,) = check_oscar()

    assert message.id == "django_openai_capi.oscar.E002"
    assert "Oscar's order app (label 'order') is not in INSTALLED_APPS" in message.msg


def test_e002_when_oscar_cannot_be_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    # Installed (its metadata says 4.2.1) but broken: an import error of its own.
    monkeypatch.setitem(sys.modules, "oscar.core.loading", None)

    (message,) = check_oscar()

    assert message.id == "django_openai_capi.oscar.E002"
    assert "django-oscar cannot be imported" in message.msg


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (42, "OPENAI_CAPI_OSCAR_CONVERSION = 42 is not a dotted path (a string)."),
        (
            "shop.conversions.Missing",
            "OPENAI_CAPI_OSCAR_CONVERSION = 'shop.conversions.Missing' cannot be imported",
        ),
        (
            "tests.contrib.oscar.custom.Missing",
            "OPENAI_CAPI_OSCAR_CONVERSION = 'tests.contrib.oscar.custom.Missing' "
            + "cannot be imported",
        ),
        (
            "tests.contrib.oscar.custom.NOT_A_CONVERSION",
            "OPENAI_CAPI_OSCAR_CONVERSION = 'tests.contrib.oscar.custom.NOT_A_CONVERSION' "
            + "is not a ModelConversion subclass.",
        ),
        (
            "django.db.models.Model",
            "OPENAI_CAPI_OSCAR_CONVERSION = 'django.db.models.Model' "
            + "is not a ModelConversion subclass.",
        ),
    ],
)
def test_e003_for_a_setting_that_names_no_conversion(
    settings: Any, value: object, problem: str
) -> None:
    setattr(settings, SETTING, value)

    (message,) = check_oscar()

    assert message.id == "django_openai_capi.oscar.E003"
    assert message.msg.startswith(problem)
    assert SETTING in str(message.hint)


@pytest.fixture
def restart() -> Iterator[Any]:
    """Run the app's ready() again, as a new process would, with Order unregistered."""
    config = apps.get_app_config("openai_capi_oscar")
    with registry.override(Order, None):
        yield config.ready


@pytest.mark.django_db
def test_a_subclass_named_by_the_setting_is_what_orders_go_through(
    settings: Any, restart: Any
) -> None:
    setattr(settings, SETTING, "tests.contrib.oscar.custom.SkuOrderConversion")
    restart()
    assert type(registry.get(Order)) is SkuOrderConversion

    order = create_order()
    build_pending()

    payload = json.loads(ConversionEvent.objects.get().payload or "")
    (line,) = order.lines.all()
    assert payload["data"]["contents"][0]["id"] == line.partner_sku


def test_start_up_with_a_bad_setting_logs_and_tracks_nothing(
    settings: Any, restart: Any, caplog: pytest.LogCaptureFixture
) -> None:
    setattr(settings, SETTING, "shop.conversions.Missing")

    with caplog.at_level(logging.ERROR, "django_openai_capi.contrib.oscar"):
        restart()

    assert registry.get(Order) is None
    (record,) = caplog.records
    assert record.getMessage().startswith(
        "Orders are not tracked: OPENAI_CAPI_OSCAR_CONVERSION = "
        + "'shop.conversions.Missing' cannot be imported"
    )


def test_a_module_that_raises_on_import_is_reported_not_a_failed_start_up(
    settings: Any, restart: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Not only ImportError: whatever a project's module raises, start-up must reach
    # manage.py check, which names the setting (as the sign-up apps' check does).
    setattr(settings, SETTING, "tests.contrib.oscar.broken.ShopOrderConversion")

    with caplog.at_level(logging.ERROR, "django_openai_capi.contrib.oscar"):
        restart()

    assert registry.get(Order) is None
    problem = (
        "OPENAI_CAPI_OSCAR_CONVERSION = 'tests.contrib.oscar.broken.ShopOrderConversion' "
        + "cannot be imported: RuntimeError: a bug in the project's module."
    )
    assert caplog.messages == [f"Orders are not tracked: {problem}"]
    (message,) = check_oscar()
    assert (message.id, message.msg) == ("django_openai_capi.oscar.E003", problem)
