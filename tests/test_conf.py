from __future__ import annotations

from typing import get_args

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_openai_capi.conf import (
    DEFAULTS,
    SETTING_NAMES,
    Dispatch,
    Settings,
    conf,
    raw_setting,
)
from django_openai_capi.exceptions import CapiConfigurationError

FAKE_KEY = "sk-svcacct-SECRET"


@pytest.fixture
def unset(settings):
    """Remove every OPENAI_CAPI_* setting, whatever tests/settings.py defines."""
    for name in SETTING_NAMES:
        delattr(settings, name)
    return settings


EXPECTED_DEFAULTS: list[tuple[str, object]] = [
    ("OPENAI_CAPI_API_KEY", None),
    ("OPENAI_CAPI_PIXEL_ID", None),
    ("OPENAI_CAPI_PIXEL_API_KEYS", {}),
    ("OPENAI_CAPI_ENDPOINT", "https://bzr.openai.com/v1/events"),
    ("OPENAI_CAPI_SEND_ENABLED", True),
    ("OPENAI_CAPI_VALIDATE_ONLY", False),
    ("OPENAI_CAPI_DISPATCH", "task"),
    ("OPENAI_CAPI_BATCH_SIZE", 1000),
    ("OPENAI_CAPI_TIMEOUT", 10.0),
    ("OPENAI_CAPI_MAX_ATTEMPTS", 20),
    ("OPENAI_CAPI_RETRY_BACKOFF", 30.0),
    ("OPENAI_CAPI_RETRY_BACKOFF_MAX", 21600.0),
    ("OPENAI_CAPI_LEASE_SECONDS", 300),
    ("OPENAI_CAPI_INTEGRATION_SOURCE", None),
    ("OPENAI_CAPI_RETENTION_DAYS", 30),
    ("OPENAI_CAPI_RAISE_ERRORS", False),
    ("OPENAI_CAPI_CONSENT", None),
    ("OPENAI_CAPI_TRUSTED_PROXIES", ()),
    ("OPENAI_CAPI_OPPREF_COOKIE_AGE", 30 * 24 * 60 * 60),
    ("OPENAI_CAPI_STALE_AFTER", 900.0),
    ("OPENAI_CAPI_MAIL_ADMINS", True),
    ("OPENAI_CAPI_USER_CONVERSION", None),
    (
        "OPENAI_CAPI_OSCAR_CONVERSION",
        "django_openai_capi.contrib.oscar.conversions.OrderConversion",
    ),
]


def test_every_setting_has_a_property_named_after_it():
    properties = {
        name
        for name, value in vars(Settings).items()
        if isinstance(value, property) and name.startswith("OPENAI_CAPI_")
    }
    assert properties == set(SETTING_NAMES)
    assert len(SETTING_NAMES) == len(set(SETTING_NAMES))
    assert list(SETTING_NAMES) == [name for name, _default in EXPECTED_DEFAULTS]


@pytest.mark.parametrize(
    ("name", "expected"),
    EXPECTED_DEFAULTS,
)
def test_default(unset, name, expected):
    assert getattr(conf, name) == expected
    assert raw_setting(name) == expected
    assert DEFAULTS[name] == expected


def test_default_types_are_exact(unset):
    # 1000 == 1000.0, so the parametrized test above cannot tell an int from a float.
    assert type(conf.OPENAI_CAPI_BATCH_SIZE) is int
    assert type(conf.OPENAI_CAPI_LEASE_SECONDS) is int
    assert type(conf.OPENAI_CAPI_TIMEOUT) is float
    assert type(conf.OPENAI_CAPI_RETRY_BACKOFF) is float


def test_default_pixel_api_keys_cannot_be_changed_for_everyone(unset):
    with pytest.raises(TypeError):
        conf.OPENAI_CAPI_PIXEL_API_KEYS["px"] = FAKE_KEY  # type: ignore[index]
    assert conf.OPENAI_CAPI_PIXEL_API_KEYS == {}


def test_values_are_read_on_every_access(settings):
    settings.OPENAI_CAPI_BATCH_SIZE = 5
    assert conf.OPENAI_CAPI_BATCH_SIZE == 5
    settings.OPENAI_CAPI_BATCH_SIZE = 7
    assert conf.OPENAI_CAPI_BATCH_SIZE == 7
    with override_settings(OPENAI_CAPI_BATCH_SIZE=9):
        assert conf.OPENAI_CAPI_BATCH_SIZE == 9
    assert conf.OPENAI_CAPI_BATCH_SIZE == 7


def test_conf_does_not_validate(settings):
    settings.OPENAI_CAPI_BATCH_SIZE = "lots"
    value: object = conf.OPENAI_CAPI_BATCH_SIZE
    assert value == "lots"


def test_properties_are_read_only():
    with pytest.raises(AttributeError):
        conf.OPENAI_CAPI_BATCH_SIZE = 3  # type: ignore[misc]


def test_dispatch_choices():
    assert get_args(Dispatch) == ("task", "inline", "none")


class TestApiKeyFor:
    def test_pixel_key_wins(self, unset):
        unset.OPENAI_CAPI_API_KEY = "default-key"
        unset.OPENAI_CAPI_PIXEL_API_KEYS = {"px_other": "other-key"}
        assert conf.api_key_for("px_other") == "other-key"

    def test_falls_back_to_the_default_key(self, unset):
        unset.OPENAI_CAPI_API_KEY = "default-key"
        unset.OPENAI_CAPI_PIXEL_API_KEYS = {"px_other": "other-key"}
        assert conf.api_key_for("px_main") == "default-key"

    def test_empty_pixel_key_falls_back(self, unset):
        unset.OPENAI_CAPI_API_KEY = "default-key"
        unset.OPENAI_CAPI_PIXEL_API_KEYS = {"px_main": ""}
        assert conf.api_key_for("px_main") == "default-key"

    def test_only_pixel_keys(self, unset):
        unset.OPENAI_CAPI_PIXEL_API_KEYS = {"px_main": "main-key"}
        assert conf.api_key_for("px_main") == "main-key"

    @pytest.mark.parametrize("default_key", [None, ""])
    def test_no_key_is_a_configuration_error(self, unset, default_key):
        unset.OPENAI_CAPI_API_KEY = default_key
        unset.OPENAI_CAPI_PIXEL_API_KEYS = {"px_other": FAKE_KEY}
        with pytest.raises(CapiConfigurationError) as excinfo:
            conf.api_key_for("px_main")
        message = str(excinfo.value)
        assert "OPENAI_CAPI_API_KEY" in message
        assert "OPENAI_CAPI_PIXEL_API_KEYS" in message
        assert "'px_main'" in message
        assert "SECRET" not in message
        # A broad `except CapiError` in delivery code must not swallow it.
        assert isinstance(excinfo.value, ImproperlyConfigured)

    def test_unset_everything(self, unset):
        with pytest.raises(CapiConfigurationError, match="OPENAI_CAPI_API_KEY"):
            conf.api_key_for("px_main")


class TestDefaultPixelId:
    def test_returns_the_setting(self, settings):
        settings.OPENAI_CAPI_PIXEL_ID = "px_main"
        assert conf.default_pixel_id() == "px_main"

    @pytest.mark.parametrize("value", [None, ""])
    def test_unset_is_a_configuration_error(self, settings, value):
        settings.OPENAI_CAPI_PIXEL_ID = value
        with pytest.raises(CapiConfigurationError, match="OPENAI_CAPI_PIXEL_ID"):
            conf.default_pixel_id()

    def test_deleted_is_a_configuration_error(self, unset):
        with pytest.raises(CapiConfigurationError, match="OPENAI_CAPI_PIXEL_ID"):
            conf.default_pixel_id()


@pytest.mark.parametrize("debug", [True, False])
def test_raise_errors_is_off_by_default_even_under_debug(unset, debug):
    # startproject's settings say DEBUG = True: a staging server must not lose orders.
    unset.DEBUG = debug
    assert DEFAULTS["OPENAI_CAPI_RAISE_ERRORS"] is False
    assert conf.OPENAI_CAPI_RAISE_ERRORS is False


@pytest.mark.parametrize("value", [None, "yes", 1])
def test_raise_errors_is_off_for_anything_but_true(settings, value):
    settings.DEBUG = True
    settings.OPENAI_CAPI_RAISE_ERRORS = value  # E019 reports each of these
    assert conf.OPENAI_CAPI_RAISE_ERRORS is False


@pytest.mark.parametrize("value", [True, False])
def test_raise_errors_set_wins_over_debug(settings, value):
    settings.DEBUG = not value
    settings.OPENAI_CAPI_RAISE_ERRORS = value
    assert conf.OPENAI_CAPI_RAISE_ERRORS is value
