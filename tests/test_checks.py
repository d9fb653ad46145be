from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.core.checks import Error, Warning
from django.core.checks.registry import registry
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from django_openai_capi import checks
from django_openai_capi.checks import check_settings
from django_openai_capi.conf import SETTING_NAMES
from django_openai_capi.dispatch import tasks_framework

FAKE_KEY = "sk-svcacct-SECRET"
PREFIX = "django_openai_capi."


@pytest.fixture(autouse=True)
def configure(settings):
    """Start each test from the defaults plus credentials, whatever tests/settings.py says."""
    for name in SETTING_NAMES:
        delattr(settings, name)
    settings.OPENAI_CAPI_API_KEY = "test-key"
    settings.OPENAI_CAPI_PIXEL_ID = "px_main"
    settings.DEBUG = False


def apply(settings, overrides: dict[str, Any]) -> None:
    for name, value in overrides.items():
        if value is DELETE:
            delattr(settings, name)
        else:
            setattr(settings, name, value)


DELETE = object()


def ids() -> list[str]:
    return [str(message.id).removeprefix(PREFIX) for message in check_settings()]


def test_defaults_with_credentials_pass():
    assert check_settings() == []


def test_defaults_alone_warn_about_credentials_only(settings):
    apply(settings, {"OPENAI_CAPI_API_KEY": DELETE, "OPENAI_CAPI_PIXEL_ID": DELETE})
    assert ids() == ["W001", "W002"]


# Each row: an id, and settings that must make exactly the listed checks fire.
BAD = [
    ("E001", {"OPENAI_CAPI_API_KEY": 123}, ["E001"]),
    ("E001", {"OPENAI_CAPI_API_KEY": FAKE_KEY.encode()}, ["E001"]),
    ("E002", {"OPENAI_CAPI_API_KEY": ""}, ["E002"]),
    ("E002", {"OPENAI_CAPI_API_KEY": FAKE_KEY + "\n"}, ["E002"]),
    ("E002", {"OPENAI_CAPI_API_KEY": " " + FAKE_KEY}, ["E002"]),
    ("E002", {"OPENAI_CAPI_API_KEY": "sk-svcacct SECRET"}, ["E002"]),
    ("W001", {"OPENAI_CAPI_API_KEY": None}, ["W001"]),
    ("W001", {"OPENAI_CAPI_API_KEY": DELETE}, ["W001"]),
    ("E003", {"OPENAI_CAPI_PIXEL_ID": ""}, ["E003"]),
    ("E003", {"OPENAI_CAPI_PIXEL_ID": 12345}, ["E003"]),
    ("E003", {"OPENAI_CAPI_PIXEL_ID": "px main"}, ["E003"]),
    ("E003", {"OPENAI_CAPI_PIXEL_ID": "px_main\n"}, ["E003"]),
    ("E003", {"OPENAI_CAPI_PIXEL_ID": FAKE_KEY}, ["E003"]),
    ("E003", {"OPENAI_CAPI_PIXEL_ID": "sk-proj-" + "x" * 40}, ["E003"]),
    # A key as the pixel id is E003 alone: W007 does not name it as a pixel.
    (
        "E003",
        {
            "OPENAI_CAPI_PIXEL_ID": FAKE_KEY,
            "OPENAI_CAPI_API_KEY": None,
            "OPENAI_CAPI_PIXEL_API_KEYS": {"px_other": "key"},
        },
        ["E003"],
    ),
    ("W002", {"OPENAI_CAPI_PIXEL_ID": None}, ["W002"]),
    ("E004", {"OPENAI_CAPI_PIXEL_API_KEYS": None}, ["E004"]),
    ("E004", {"OPENAI_CAPI_PIXEL_API_KEYS": [("px_a", "key")]}, ["E004"]),
    ("E004", {"OPENAI_CAPI_PIXEL_API_KEYS": {"px_a": ""}}, ["E004"]),
    ("E004", {"OPENAI_CAPI_PIXEL_API_KEYS": {"px_a": "key\n"}}, ["E004"]),
    ("E004", {"OPENAI_CAPI_PIXEL_API_KEYS": {"px_a": None}}, ["E004"]),
    ("E004", {"OPENAI_CAPI_PIXEL_API_KEYS": {"": "key"}}, ["E004"]),
    ("E004", {"OPENAI_CAPI_PIXEL_API_KEYS": {"px a": "key"}}, ["E004"]),
    ("E004", {"OPENAI_CAPI_PIXEL_API_KEYS": {1: "key"}}, ["E004"]),
    ("E004", {"OPENAI_CAPI_PIXEL_API_KEYS": {FAKE_KEY: "px_a"}}, ["E004"]),
    ("E004", {"OPENAI_CAPI_PIXEL_API_KEYS": {"px_a": "", "px_b": 2}}, ["E004", "E004"]),
    (
        "W007",
        {
            "OPENAI_CAPI_API_KEY": None,
            "OPENAI_CAPI_PIXEL_API_KEYS": {"px_other": "key"},
        },
        ["W007"],
    ),
    (
        "W007",
        {"OPENAI_CAPI_API_KEY": DELETE, "OPENAI_CAPI_PIXEL_API_KEYS": {"px_a": "k"}},
        ["W007"],
    ),
    (
        "W007",
        {"OPENAI_CAPI_API_KEY": "", "OPENAI_CAPI_PIXEL_API_KEYS": {"px_a": "k"}},
        ["E002", "W007"],
    ),
    ("E005", {"OPENAI_CAPI_ENDPOINT": None}, ["E005"]),
    ("E005", {"OPENAI_CAPI_ENDPOINT": ""}, ["E005"]),
    ("E005", {"OPENAI_CAPI_ENDPOINT": "bzr.openai.com/v1/events"}, ["E005"]),
    ("E005", {"OPENAI_CAPI_ENDPOINT": "ftp://bzr.openai.com/v1/events"}, ["E005"]),
    ("E005", {"OPENAI_CAPI_ENDPOINT": "https:///v1/events"}, ["E005"]),
    ("E005", {"OPENAI_CAPI_ENDPOINT": "https://bzr.openai.com:port/v1"}, ["E005"]),
    ("E005", {"OPENAI_CAPI_ENDPOINT": "http://[::1/v1/events"}, ["E005"]),
    ("E005", {"OPENAI_CAPI_ENDPOINT": "https://bzr.openai.com/v1/events\n"}, ["E005"]),
    ("E006", {"OPENAI_CAPI_ENDPOINT": "http://bzr.openai.com/v1/events"}, ["E006"]),
    ("E006", {"OPENAI_CAPI_ENDPOINT": "http://10.0.0.5:8000/v1/events"}, ["E006"]),
    ("E006", {"OPENAI_CAPI_ENDPOINT": "http://localhost.example.com/"}, ["E006"]),
    (
        "W003",
        {"OPENAI_CAPI_ENDPOINT": "https://bzr.openai.com/v1/events?pid=1"},
        ["W003"],
    ),
    ("W003", {"OPENAI_CAPI_ENDPOINT": "https://bzr.openai.com/v1/events#x"}, ["W003"]),
    (
        "W008",
        {"OPENAI_CAPI_ENDPOINT": "https://api.ads.openai.com/v1/events"},
        ["W008"],
    ),
    ("W008", {"OPENAI_CAPI_ENDPOINT": "https://API.Ads.OpenAI.com./v1"}, ["W008"]),
    (
        "E018",
        {"OPENAI_CAPI_ENDPOINT": "https://user:SECRET@bzr.openai.com/v1/events"},
        ["E018"],
    ),
    (
        "E018",
        {"OPENAI_CAPI_ENDPOINT": f"https://{FAKE_KEY}@bzr.openai.com/v1/events"},
        ["E018"],
    ),
    ("E018", {"OPENAI_CAPI_ENDPOINT": "https://:SECRET@localhost/v1"}, ["E018"]),
    (
        "E018",
        {"OPENAI_CAPI_ENDPOINT": "http://u:SECRET@api.ads.openai.com/v1?pid=1"},
        ["E018", "E006", "W003", "W008"],
    ),
    ("E019", {"OPENAI_CAPI_RAISE_ERRORS": "yes"}, ["E019"]),
    ("E019", {"OPENAI_CAPI_RAISE_ERRORS": 1}, ["E019"]),
    ("E020", {"USE_TZ": False}, ["E020"]),
    ("E007", {"OPENAI_CAPI_SEND_ENABLED": "false"}, ["E007"]),
    ("E007", {"OPENAI_CAPI_SEND_ENABLED": 1}, ["E007"]),
    ("E007", {"OPENAI_CAPI_SEND_ENABLED": None}, ["E007"]),
    ("E008", {"OPENAI_CAPI_VALIDATE_ONLY": "true"}, ["E008"]),
    ("E008", {"OPENAI_CAPI_VALIDATE_ONLY": 0}, ["E008"]),
    ("W004", {"OPENAI_CAPI_VALIDATE_ONLY": True}, ["W004"]),
    ("E009", {"OPENAI_CAPI_DISPATCH": "tasks"}, ["E009"]),
    ("E009", {"OPENAI_CAPI_DISPATCH": "TASK"}, ["E009"]),
    ("E009", {"OPENAI_CAPI_DISPATCH": None}, ["E009"]),
    ("E010", {"OPENAI_CAPI_BATCH_SIZE": 0}, ["E010"]),
    ("E010", {"OPENAI_CAPI_BATCH_SIZE": 1001}, ["E010"]),
    ("E010", {"OPENAI_CAPI_BATCH_SIZE": True}, ["E010"]),
    ("E010", {"OPENAI_CAPI_BATCH_SIZE": 100.0}, ["E010"]),
    ("E010", {"OPENAI_CAPI_BATCH_SIZE": "100"}, ["E010"]),
    ("E011", {"OPENAI_CAPI_TIMEOUT": 0}, ["E011"]),
    ("E011", {"OPENAI_CAPI_TIMEOUT": -1.0}, ["E011"]),
    ("E011", {"OPENAI_CAPI_TIMEOUT": None}, ["E011"]),
    ("E011", {"OPENAI_CAPI_TIMEOUT": True}, ["E011"]),
    ("E011", {"OPENAI_CAPI_TIMEOUT": "10"}, ["E011"]),
    ("E011", {"OPENAI_CAPI_TIMEOUT": float("nan")}, ["E011"]),
    ("E011", {"OPENAI_CAPI_TIMEOUT": float("inf")}, ["E011"]),
    ("E011", {"OPENAI_CAPI_TIMEOUT": [3.0, 10.0]}, ["E011"]),
    ("E011", {"OPENAI_CAPI_TIMEOUT": (3.0,)}, ["E011"]),
    ("E011", {"OPENAI_CAPI_TIMEOUT": (3.0, 0)}, ["E011"]),
    ("E011", {"OPENAI_CAPI_TIMEOUT": (0, 10.0)}, ["E011"]),
    ("E011", {"OPENAI_CAPI_TIMEOUT": (3.0, 10.0, 1.0)}, ["E011"]),
    ("E012", {"OPENAI_CAPI_MAX_ATTEMPTS": 0}, ["E012"]),
    ("E012", {"OPENAI_CAPI_MAX_ATTEMPTS": -3}, ["E012"]),
    ("E012", {"OPENAI_CAPI_MAX_ATTEMPTS": 2.5}, ["E012"]),
    ("E012", {"OPENAI_CAPI_MAX_ATTEMPTS": True}, ["E012"]),
    ("E012", {"OPENAI_CAPI_MAX_ATTEMPTS": None}, ["E012"]),
    # An invalid backoff says so once; the cap is not also blamed for it.
    ("E013", {"OPENAI_CAPI_RETRY_BACKOFF": 0}, ["E013"]),
    ("E013", {"OPENAI_CAPI_RETRY_BACKOFF": -30.0}, ["E013"]),
    ("E013", {"OPENAI_CAPI_RETRY_BACKOFF": "30"}, ["E013"]),
    ("E013", {"OPENAI_CAPI_RETRY_BACKOFF": None}, ["E013"]),
    ("E013", {"OPENAI_CAPI_RETRY_BACKOFF": float("nan")}, ["E013"]),
    ("E014", {"OPENAI_CAPI_RETRY_BACKOFF_MAX": 29.9}, ["E014"]),
    ("E014", {"OPENAI_CAPI_RETRY_BACKOFF_MAX": 0}, ["E014"]),
    ("E014", {"OPENAI_CAPI_RETRY_BACKOFF_MAX": None}, ["E014"]),
    ("E014", {"OPENAI_CAPI_RETRY_BACKOFF_MAX": float("inf")}, ["E014"]),
    (
        "E014",
        {"OPENAI_CAPI_RETRY_BACKOFF": 60, "OPENAI_CAPI_RETRY_BACKOFF_MAX": 59},
        ["E014"],
    ),
    ("E015", {"OPENAI_CAPI_LEASE_SECONDS": 0}, ["E015"]),
    ("E015", {"OPENAI_CAPI_LEASE_SECONDS": 300.0}, ["E015"]),
    ("E015", {"OPENAI_CAPI_LEASE_SECONDS": True}, ["E015"]),
    ("E015", {"OPENAI_CAPI_LEASE_SECONDS": None}, ["E015"]),
    ("W005", {"OPENAI_CAPI_LEASE_SECONDS": 20}, ["W005"]),
    ("W005", {"OPENAI_CAPI_LEASE_SECONDS": 5, "OPENAI_CAPI_TIMEOUT": 2.5}, ["W005"]),
    (
        "W005",
        {"OPENAI_CAPI_LEASE_SECONDS": 60, "OPENAI_CAPI_TIMEOUT": (1.0, 30.0)},
        ["W005"],
    ),
    # A pair's connect time counts too: the whole request may take their sum.
    (
        "W005",
        {"OPENAI_CAPI_LEASE_SECONDS": 61, "OPENAI_CAPI_TIMEOUT": (100.0, 30.0)},
        ["W005"],
    ),
    ("E016", {"OPENAI_CAPI_INTEGRATION_SOURCE": ""}, ["E016"]),
    ("E016", {"OPENAI_CAPI_INTEGRATION_SOURCE": "   "}, ["E016"]),
    ("E016", {"OPENAI_CAPI_INTEGRATION_SOURCE": "-acme"}, ["E016"]),
    ("E016", {"OPENAI_CAPI_INTEGRATION_SOURCE": "_acme"}, ["E016"]),
    ("E016", {"OPENAI_CAPI_INTEGRATION_SOURCE": "acme measurement"}, ["E016"]),
    ("E016", {"OPENAI_CAPI_INTEGRATION_SOURCE": "acme!"}, ["E016"]),
    ("E016", {"OPENAI_CAPI_INTEGRATION_SOURCE": "acmé"}, ["E016"]),
    # The Kelvin sign, which str.lower() turns into an ASCII "k".
    ("E016", {"OPENAI_CAPI_INTEGRATION_SOURCE": "\u212aacme"}, ["E016"]),
    ("E016", {"OPENAI_CAPI_INTEGRATION_SOURCE": "a" * 65}, ["E016"]),
    ("E016", {"OPENAI_CAPI_INTEGRATION_SOURCE": 42}, ["E016"]),
    ("E017", {"OPENAI_CAPI_RETENTION_DAYS": 0}, ["E017"]),
    ("E017", {"OPENAI_CAPI_RETENTION_DAYS": 7.5}, ["E017"]),
    ("E017", {"OPENAI_CAPI_RETENTION_DAYS": None}, ["E017"]),
    ("W006", {"OPENAI_CAPI_PIXELID": "px_main"}, ["W006"]),
    (
        "W006",
        {"OPENAI_CAPI_ACCESS_TOKEN": "x", "OPENAI_CAPI_DEBUG": True},
        ["W006", "W006"],
    ),
]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param(overrides, expected, id=check_id)
        for check_id, overrides, expected in BAD
    ],
)
def test_bad_value_fires(settings, overrides, expected):
    apply(settings, overrides)
    assert ids() == expected
    for message in check_settings():
        # Each message names the setting to change.
        assert any(name in message.msg for name in [*overrides, "OPENAI_CAPI_"])
        assert message.hint
        assert "\n" not in message.msg + message.hint


# Values next to the bad ones above that must stay silent.
GOOD = [
    {"OPENAI_CAPI_API_KEY": None, "OPENAI_CAPI_PIXEL_API_KEYS": {"px_main": "key"}},
    {"OPENAI_CAPI_API_KEY": None, "OPENAI_CAPI_SEND_ENABLED": False},
    {"OPENAI_CAPI_PIXEL_API_KEYS": {"px_a": "key-a", "px_b": "key-b"}},
    {"OPENAI_CAPI_PIXEL_ID": "px_sk-main"},
    {"OPENAI_CAPI_PIXEL_ID": "sk_main"},
    {
        "OPENAI_CAPI_API_KEY": None,
        "OPENAI_CAPI_PIXEL_API_KEYS": {"px_main": "key", "px_other": "key"},
    },
    {
        "OPENAI_CAPI_API_KEY": None,
        "OPENAI_CAPI_PIXEL_API_KEYS": {"px_other": "key"},
        "OPENAI_CAPI_SEND_ENABLED": False,
    },
    {"OPENAI_CAPI_ENDPOINT": "http://localhost:8000/v1/events"},
    {"OPENAI_CAPI_ENDPOINT": "http://127.9.9.9:9/v1/events"},
    {"OPENAI_CAPI_ENDPOINT": "http://[::1]:8080/v1/events"},
    {"OPENAI_CAPI_ENDPOINT": "HTTPS://Staging.Example.com/v1/events"},
    {"OPENAI_CAPI_ENDPOINT": "https://bzr.openai.com/v1/events?"},
    {"OPENAI_CAPI_ENDPOINT": "https://bzr.openai.com/v1/events"},
    {"OPENAI_CAPI_ENDPOINT": "https://api.ads.openai.com.example.com/v1/events"},
    {"OPENAI_CAPI_ENDPOINT": "https://ads.openai.com/v1/events"},
    {"OPENAI_CAPI_ENDPOINT": "https://fake.example.com/v1/user@events"},
    {"OPENAI_CAPI_SEND_ENABLED": False},
    {"OPENAI_CAPI_VALIDATE_ONLY": True, "DEBUG": True},
    {"OPENAI_CAPI_DISPATCH": "inline"},
    {"OPENAI_CAPI_DISPATCH": "none"},
    {"OPENAI_CAPI_BATCH_SIZE": 1},
    {"OPENAI_CAPI_BATCH_SIZE": 1000},
    {"OPENAI_CAPI_TIMEOUT": 5},
    {"OPENAI_CAPI_TIMEOUT": (3.05, 27)},
    {"OPENAI_CAPI_MAX_ATTEMPTS": 1},
    {"OPENAI_CAPI_RETRY_BACKOFF": 1, "OPENAI_CAPI_RETRY_BACKOFF_MAX": 1},
    {"OPENAI_CAPI_RETRY_BACKOFF": 0.5},
    {"OPENAI_CAPI_LEASE_SECONDS": 21},
    {"OPENAI_CAPI_LEASE_SECONDS": 261, "OPENAI_CAPI_TIMEOUT": (100.0, 30.0)},
    {"OPENAI_CAPI_INTEGRATION_SOURCE": "acme_measurement"},
    {"OPENAI_CAPI_INTEGRATION_SOURCE": "  Acme-Measurement.v2 "},
    {"OPENAI_CAPI_INTEGRATION_SOURCE": "9" + "a" * 63},
    {"OPENAI_CAPI_INTEGRATION_SOURCE": "kacme"},
    {"OPENAI_CAPI_RETENTION_DAYS": 1},
]


@pytest.mark.parametrize("overrides", GOOD)
def test_good_value_is_silent(settings, overrides):
    apply(settings, overrides)
    assert check_settings() == []


def test_levels_match_ids(settings):
    apply(
        settings,
        {
            "OPENAI_CAPI_BATCH_SIZE": 0,
            "OPENAI_CAPI_PIXEL_ID": None,
            "OPENAI_CAPI_ENDPOINT": "http://example.com/?x",
        },
    )
    messages = check_settings()
    assert [m.id for m in messages] == [
        "django_openai_capi.W002",
        "django_openai_capi.E006",
        "django_openai_capi.W003",
        "django_openai_capi.E010",
    ]
    for message in messages:
        expected = Error if str(message.id).startswith(PREFIX + "E") else Warning
        assert type(message) is expected


def test_typo_suggests_the_closest_setting(settings):
    settings.OPENAI_CAPI_PIXELID = "px_main"
    settings.OPENAI_CAPI_FROBNICATE = True
    by_name = {message.msg.split()[0]: message for message in check_settings()}
    assert "did you mean OPENAI_CAPI_PIXEL_ID?" in by_name["OPENAI_CAPI_PIXELID"].msg
    assert by_name["OPENAI_CAPI_PIXELID"].hint == "Rename it to OPENAI_CAPI_PIXEL_ID."
    assert "did you mean" not in by_name["OPENAI_CAPI_FROBNICATE"].msg


def test_e004_names_the_pixel(settings):
    settings.OPENAI_CAPI_PIXEL_API_KEYS = {"px_other": "key\n"}
    [message] = check_settings()
    assert "OPENAI_CAPI_PIXEL_API_KEYS['px_other']" in message.msg


def test_w007_names_the_default_pixel(settings):
    settings.OPENAI_CAPI_API_KEY = None
    settings.OPENAI_CAPI_PIXEL_API_KEYS = {"px_other": "key"}
    [message] = check_settings()
    assert "OPENAI_CAPI_PIXEL_ID 'px_main'" in message.msg
    assert "'px_main'" in (message.hint or "")


def test_w005_compares_the_lease_with_the_whole_request_deadline(settings):
    settings.OPENAI_CAPI_LEASE_SECONDS = 200
    settings.OPENAI_CAPI_TIMEOUT = (70.0, 30.0)
    [message] = check_settings()
    assert message.id == "django_openai_capi.W005"
    assert "100 s OPENAI_CAPI_TIMEOUT allows a whole request" in message.msg


def test_w008_hint_gives_the_events_url(settings):
    settings.OPENAI_CAPI_ENDPOINT = "https://api.ads.openai.com/v1/events"
    [message] = check_settings()
    assert "https://bzr.openai.com/v1/events" in (message.hint or "")


def test_e018_does_not_echo_the_url(settings):
    settings.OPENAI_CAPI_ENDPOINT = "https://someone:hunter2@fake.example.com/v1"
    [message] = check_settings()
    text = message.msg + (message.hint or "")
    for part in ("someone", "hunter2", "fake.example.com"):
        assert part not in text
    assert "OPENAI_CAPI_API_KEY" in (message.hint or "")


@pytest.mark.parametrize(
    "overrides",
    [
        {"OPENAI_CAPI_API_KEY": FAKE_KEY + "\n"},
        {"OPENAI_CAPI_API_KEY": " " + FAKE_KEY},
        {"OPENAI_CAPI_API_KEY": "sk-svcacct SECRET"},
        {"OPENAI_CAPI_API_KEY": FAKE_KEY.encode()},
        {"OPENAI_CAPI_PIXEL_API_KEYS": {"px_a": FAKE_KEY + "\n"}},
        {"OPENAI_CAPI_PIXEL_API_KEYS": {"px_a": FAKE_KEY.encode()}},
        {"OPENAI_CAPI_PIXEL_API_KEYS": {FAKE_KEY: "px_a"}},
        {"OPENAI_CAPI_PIXEL_API_KEYS": {FAKE_KEY + "\n": "px_a"}},
        {"OPENAI_CAPI_PIXEL_API_KEYS": {" " + FAKE_KEY: "px_a"}},
        {"OPENAI_CAPI_PIXEL_ID": FAKE_KEY + " "},
        {"OPENAI_CAPI_PIXEL_ID": FAKE_KEY},
        {
            "OPENAI_CAPI_PIXEL_ID": FAKE_KEY,
            "OPENAI_CAPI_API_KEY": None,
            "OPENAI_CAPI_PIXEL_API_KEYS": {"px_other": "key"},
        },
        {"OPENAI_CAPI_ENDPOINT": "https://user:SECRET@bzr.openai.com/v1/events"},
        {"OPENAI_CAPI_ENDPOINT": f"https://{FAKE_KEY}@bzr.openai.com/v1/events"},
        {"OPENAI_CAPI_ENDPOINT": f"http://u:{FAKE_KEY}@api.ads.openai.com/v1?pid=1"},
        {"OPENAI_CAPI_ACCESS_TOKEN": FAKE_KEY},
    ],
)
def test_no_message_contains_a_key(settings, overrides):
    apply(settings, overrides)
    messages = check_settings()
    assert messages
    for message in messages:
        assert "SECRET" not in message.msg
        assert "SECRET" not in (message.hint or "")


def test_ids_are_unique_and_catalogued():
    source = Path(checks.__file__).read_text(encoding="utf-8")
    used = re.findall(r'id="django_openai_capi\.([EW]\d{3})"', source)
    assert len(used) == len(set(used)), "an id is used twice"
    catalogued = {
        check_id.removeprefix("django_openai_capi.") for check_id in checks.CHECK_IDS
    }
    assert set(used) == catalogued
    assert set(used) == {check_id for check_id, _overrides, _expected in BAD}


def test_check_is_registered():
    registered: list[object] = list(registry.get_checks())
    assert check_settings in registered


def test_manage_py_check_fails_on_an_error(settings):
    settings.OPENAI_CAPI_BATCH_SIZE = 0
    with pytest.raises(SystemCheckError, match=r"django_openai_capi\.E010"):
        call_command("check")


# Dispatch through the Tasks framework. The rows join BAD, whose ids must all be
# documented; BAD was parametrized above before they joined, so the tests below run them.

FRAMEWORK = tasks_framework()
IMMEDIATE = f"{FRAMEWORK}.backends.immediate.ImmediateBackend"
DUMMY = f"{FRAMEWORK}.backends.dummy.DummyBackend"

TASKS_BAD = [
    ("W009", {"TASKS": {"default": {"BACKEND": IMMEDIATE}}}, ["W009"]),
    ("W010", {"TASKS": {"default": {"BACKEND": DUMMY}}}, ["W010"]),
    ("E022", {"TASKS": {"default": {"BACKEND": "no_such.Backend"}}}, ["E022"]),
    ("E022", {"TASKS": {"other": {"BACKEND": DUMMY}}}, ["E022"]),
    ("E022", {"TASKS": {"default": {}}}, ["E022"]),
]
BAD.extend(TASKS_BAD)
# Settings cannot uninstall a package: see test_e021_without_a_tasks_framework.
BAD.append(("E021", {}, ["E021"]))


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param(overrides, expected, id=f"{check_id}-{index}")
        for index, (check_id, overrides, expected) in enumerate(TASKS_BAD)
    ],
)
def test_tasks_backend_check_fires(settings, overrides, expected):
    apply(settings, overrides)
    assert ids() == expected
    [message] = check_settings()
    assert 'OPENAI_CAPI_DISPATCH = "task"' in message.msg
    assert message.hint
    assert "\n" not in message.msg + message.hint


def test_the_immediate_backend_warning_offers_the_worker_the_docs_recommend(settings):
    settings.OPENAI_CAPI_DISPATCH = "task"
    settings.TASKS = {"default": {"BACKEND": IMMEDIATE}}
    [message] = check_settings()
    assert message.id == "django_openai_capi.W009"
    assert message.hint is not None
    assert (
        'set OPENAI_CAPI_DISPATCH = "none" and run manage.py openai_capi_send --loop'
        in message.hint
    )


@pytest.mark.parametrize("dispatch", ["inline", "none", "tasks"])
def test_tasks_backend_is_not_checked_unless_dispatch_is_task(settings, dispatch):
    apply(settings, {"OPENAI_CAPI_DISPATCH": dispatch, "TASKS": {"default": {}}})
    assert "E022" not in ids()


def test_a_backend_with_a_worker_is_silent(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    assert check_settings() == []


def test_e022_says_what_is_wrong_with_tasks(settings):
    settings.TASKS = {"default": {"BACKEND": "no_such.Backend"}}
    [message] = check_settings()
    assert "no_such.Backend" in (message.hint or "")


def test_e021_without_a_tasks_framework(settings, monkeypatch):
    monkeypatch.setattr(checks, "tasks_framework", lambda: None)
    assert ids() == ["E021"]
    [message] = check_settings()
    assert "django-tasks" in (message.hint or "")
    settings.OPENAI_CAPI_DISPATCH = "inline"
    assert check_settings() == []


# The browser side: consent, trusted proxies, the __oppref cookie. Like the tasks rows,
# they join BAD so that every id stays documented, and run in the tests below.

BROWSER_BAD = [
    ("E023", {"OPENAI_CAPI_CONSENT": 42}, ["E023"]),
    ("E023", {"OPENAI_CAPI_CONSENT": "tests.testapp.consent.nowhere"}, ["E023"]),
    ("E023", {"OPENAI_CAPI_CONSENT": "no_such_module.consent"}, ["E023"]),
    ("E023", {"OPENAI_CAPI_CONSENT": "tests.testapp.consent.NOT_CALLABLE"}, ["E023"]),
    ("E024", {"OPENAI_CAPI_TRUSTED_PROXIES": "10.0.0.0/8"}, ["E024"]),
    ("E024", {"OPENAI_CAPI_TRUSTED_PROXIES": None}, ["E024"]),
    ("E024", {"OPENAI_CAPI_TRUSTED_PROXIES": ["10.0.0.0/8", "proxy.local"]}, ["E024"]),
    ("E024", {"OPENAI_CAPI_TRUSTED_PROXIES": [10]}, ["E024"]),
    ("W011", {"OPENAI_CAPI_TRUSTED_PROXIES": ["0.0.0.0/0"]}, ["W011"]),
    ("W011", {"OPENAI_CAPI_TRUSTED_PROXIES": ("::/0", "10.0.0.1")}, ["W011"]),
    ("E025", {"OPENAI_CAPI_OPPREF_COOKIE_AGE": 0}, ["E025"]),
    ("E025", {"OPENAI_CAPI_OPPREF_COOKIE_AGE": 86400.0}, ["E025"]),
    ("E025", {"OPENAI_CAPI_OPPREF_COOKIE_AGE": None}, ["E025"]),
]
BAD.extend(BROWSER_BAD)

MONITORING_BAD = [
    ("E026", {"OPENAI_CAPI_STALE_AFTER": 0}, ["E026"]),
    ("E026", {"OPENAI_CAPI_STALE_AFTER": -60}, ["E026"]),
    ("E026", {"OPENAI_CAPI_STALE_AFTER": "900"}, ["E026"]),
    ("E026", {"OPENAI_CAPI_STALE_AFTER": True}, ["E026"]),
    ("E027", {"OPENAI_CAPI_MAIL_ADMINS": "no"}, ["E027"]),
    ("E027", {"OPENAI_CAPI_MAIL_ADMINS": 0}, ["E027"]),
]
BAD.extend(MONITORING_BAD)

BROWSER_GOOD = [
    {"OPENAI_CAPI_CONSENT": None},
    {"OPENAI_CAPI_CONSENT": "tests.testapp.consent.by_cookie"},
    {"OPENAI_CAPI_TRUSTED_PROXIES": []},
    {"OPENAI_CAPI_TRUSTED_PROXIES": ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]},
    {"OPENAI_CAPI_TRUSTED_PROXIES": ("172.16.0.0/12",)},
    {"OPENAI_CAPI_OPPREF_COOKIE_AGE": 1},
    {"OPENAI_CAPI_OPPREF_COOKIE_AGE": 90 * 86400},
]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param(overrides, expected, id=f"{check_id}-{index}")
        for index, (check_id, overrides, expected) in enumerate(BROWSER_BAD)
    ],
)
def test_browser_setting_check_fires(settings, overrides, expected):
    apply(settings, overrides)
    assert ids() == expected
    for message in check_settings():
        assert any(name in message.msg for name in overrides)
        assert message.hint
        assert "\n" not in message.msg + message.hint


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param(overrides, expected, id=f"{check_id}-{index}")
        for index, (check_id, overrides, expected) in enumerate(MONITORING_BAD)
    ],
)
def test_monitoring_setting_check_fires_naming_the_setting(
    settings, overrides, expected
):
    apply(settings, overrides)
    assert ids() == expected
    for message in check_settings():
        assert any(name in message.msg for name in overrides)


@pytest.mark.parametrize(
    "overrides",
    [
        {"OPENAI_CAPI_STALE_AFTER": 60},
        {"OPENAI_CAPI_STALE_AFTER": 1800.0},
        {"OPENAI_CAPI_MAIL_ADMINS": False},
    ],
)
def test_monitoring_setting_good_value_is_silent(settings, overrides):
    apply(settings, overrides)
    assert check_settings() == []


@pytest.mark.parametrize("overrides", BROWSER_GOOD)
def test_browser_setting_good_value_is_silent(settings, overrides):
    apply(settings, overrides)
    assert check_settings() == []


def test_e023_says_why_the_path_does_not_work(settings):
    settings.OPENAI_CAPI_CONSENT = "tests.testapp.consent.NOT_CALLABLE"
    [message] = check_settings()
    assert "names an object of type int, not a callable" in message.msg
    settings.OPENAI_CAPI_CONSENT = "no_such_module.consent"
    [message] = check_settings()
    assert "cannot be imported (ModuleNotFoundError" in message.msg


def test_e024_names_the_entry_that_is_not_an_address(settings):
    settings.OPENAI_CAPI_TRUSTED_PROXIES = ["10.0.0.0/8", "proxy.local"]
    [message] = check_settings()
    assert "'proxy.local'" in message.msg


# The pixel id's rules are one rule: the setting's, the per-pixel keys' and each
# conversion's (its pixel_id attribute, get_pixel_id(), track(pixel_id=...)) alike.


@pytest.mark.parametrize("pixel", ["px\x00main", "px\x07main", "px\ud800main"])
def test_e003_refuses_a_pixel_id_the_database_cannot_store_or_the_url_cannot_carry(
    settings, pixel
):
    settings.OPENAI_CAPI_PIXEL_ID = pixel
    (error,) = check_settings()
    assert error.id == PREFIX + "E003"
    assert error.msg.startswith(
        "OPENAI_CAPI_PIXEL_ID should be a non-empty string without whitespace; it contains a "
    )


@pytest.mark.parametrize(
    ("pixel", "shown"),
    [
        ("px main", 'it contains whitespace ("px main").'),
        (1234567, "it is 1234567, not a string."),
        # A key with whitespace in it is a key first, never shown.
        (" sk-proj-" + "x" * 40, "it looks like an API key."),
    ],
)
def test_e003_shows_the_pixel_id_it_refuses_unless_it_is_a_key(settings, pixel, shown):
    settings.OPENAI_CAPI_PIXEL_ID = pixel
    (error,) = check_settings()
    assert error.id == PREFIX + "E003"
    assert error.msg.endswith(shown)
    assert "sk-proj" not in error.msg


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (5000, "5000"),
        (0, "0"),
        (True, "True"),
        (100.0, "100.0"),
        ("100", "a string of 3 characters"),
    ],
)
def test_e010_says_what_it_got(settings, value, shown):
    settings.OPENAI_CAPI_BATCH_SIZE = value
    (error,) = check_settings()
    assert error.id == PREFIX + "E010"
    assert error.msg == (
        f"OPENAI_CAPI_BATCH_SIZE should be an int from 1 to 1000, got {shown}."
    )


def test_e004_refuses_a_pixel_id_with_a_nul_character(settings):
    settings.OPENAI_CAPI_PIXEL_API_KEYS = {"px\x00b": "key-b"}
    (error,) = check_settings()
    assert error.id == PREFIX + "E004"
    assert "contains a NUL character" in error.msg


def test_e019_refuses_none_which_no_longer_follows_debug(settings):
    settings.OPENAI_CAPI_RAISE_ERRORS = None
    (error,) = check_settings()
    assert error.id == PREFIX + "E019"
    assert error.msg == "OPENAI_CAPI_RAISE_ERRORS should be True or False, not None."
    assert error.hint is not None
    assert "DEBUG" in error.hint and "test settings" in error.hint
