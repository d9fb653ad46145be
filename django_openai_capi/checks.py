"""System checks for the ``OPENAI_CAPI_*`` settings, run by ``manage.py check``.

Errors mean the value cannot work; warnings mean it works but is probably a mistake.
No message or hint ever contains an API key: they say what is wrong with it instead.

Ids: :data:`CHECK_IDS` lists every one with what it reports and the fix (never reuse
an id: a retired check keeps its entry there).
"""

from __future__ import annotations

import difflib
import importlib
import ipaddress
import math
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple, TypeGuard, get_args
from urllib.parse import SplitResult, urlsplit

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.utils.module_loading import import_string

from django_openai_capi.api import spec
from django_openai_capi.api.identifiers import looks_like_api_key, pixel_id_problem
from django_openai_capi.api.values import given
from django_openai_capi.conf import (
    SETTING_NAMES,
    Dispatch,
    is_loopback_host,
    key_problem,
    raw_setting,
    request_deadline,
)
from django_openai_capi.dispatch import tasks_framework
from django_openai_capi.redaction import describe_exception, redact

PREFIX = "OPENAI_CAPI_"


#: The modules whose checks report ids, each with its own ``CHECK_IDS``: this one and
#: the contrib apps'. The checks reference lists them in this order.
CHECK_MODULES = (
    "django_openai_capi.checks",
    "django_openai_capi.contrib.oscar.checks",
    "django_openai_capi.contrib.auth.checks",
    "django_openai_capi.contrib.allauth.checks",
    "django_openai_capi.contrib.health_check.apps",
)


class CheckId(NamedTuple):
    """What a check id reports, and what to do about it: a row of the checks reference."""

    problem: str
    fix: str


#: Every check id this module reports, for the checks reference
#: (docs/reference/checks.md, generated from it); a test keeps it and the ids used
#: below the same. Never reuse an id: when a check is retired, keep its entry with a
#: problem that starts "Retired:". Markdown.
CHECK_IDS: Mapping[str, CheckId] = MappingProxyType(
    {
        "django_openai_capi.E001": CheckId(
            "`OPENAI_CAPI_API_KEY` is set but is not a string.",
            "Set it to the Conversions API key as a `str` (or `None` to leave it unset).",
        ),
        "django_openai_capi.E002": CheckId(
            "`OPENAI_CAPI_API_KEY` cannot be sent: empty, surrounding or inner "
            "whitespace, quotes, characters a bearer token cannot hold (the worker and "
            "`openai_capi_verify` refuse it by the same rule).",
            "Strip the value where it is read (a key pasted into an env file often ends "
            "in a newline); set it exactly as Ads Manager → Conversions shows it.",
        ),
        "django_openai_capi.E003": CheckId(
            "`OPENAI_CAPI_PIXEL_ID` is not a non-empty string without whitespace or "
            "control characters, or looks like an API key (it would travel in "
            "`?pid=`, into access logs).",
            "Copy the Pixel ID from Ads Manager → Conversions.",
        ),
        "django_openai_capi.E004": CheckId(
            "`OPENAI_CAPI_PIXEL_API_KEYS` is not a dict of pixel id to a key that can "
            "be sent.",
            "Map each Pixel ID to its Conversions API key (not the other way round), or "
            "use `{}`.",
        ),
        "django_openai_capi.E005": CheckId(
            "`OPENAI_CAPI_ENDPOINT` is not an absolute http(s) URL with a host.",
            "Use the default `https://bzr.openai.com/v1/events`, or the full URL of a "
            "fake.",
        ),
        "django_openai_capi.E006": CheckId(
            "`OPENAI_CAPI_ENDPOINT` uses `http://` for a host that is not loopback: "
            "the key would travel in clear text.",
            "Use `https://`, or run the fake on localhost.",
        ),
        "django_openai_capi.E007": CheckId(
            "`OPENAI_CAPI_SEND_ENABLED` is not a bool.",
            "Read it as a bool (e.g. `env.bool`).",
        ),
        "django_openai_capi.E008": CheckId(
            "`OPENAI_CAPI_VALIDATE_ONLY` is not a bool.",
            "Read it as a bool (e.g. `env.bool`).",
        ),
        "django_openai_capi.E009": CheckId(
            '`OPENAI_CAPI_DISPATCH` is not `"task"`, `"inline"` or `"none"`.',
            'Use one of them (`"none"` leaves sending to `manage.py openai_capi_send`).',
        ),
        "django_openai_capi.E010": CheckId(
            "`OPENAI_CAPI_BATCH_SIZE` is not an int from 1 to 1000.",
            "The API takes at most 1000 events per request; the default is 1000.",
        ),
        "django_openai_capi.E011": CheckId(
            "`OPENAI_CAPI_TIMEOUT` is not a positive number or a pair of them.",
            "For example `10.0`, or `(3.05, 10.0)`; a list or `None` is not accepted.",
        ),
        "django_openai_capi.E012": CheckId(
            "`OPENAI_CAPI_MAX_ATTEMPTS` is not a positive int.",
            "Attempts per event, the first included; the default 20 retries for about "
            "2.6 days.",
        ),
        "django_openai_capi.E013": CheckId(
            "`OPENAI_CAPI_RETRY_BACKOFF` is not a positive number.",
            "The wait before the first retry, in seconds; the default is `30.0`.",
        ),
        "django_openai_capi.E014": CheckId(
            "`OPENAI_CAPI_RETRY_BACKOFF_MAX` is not a number at least "
            "`OPENAI_CAPI_RETRY_BACKOFF`.",
            "It caps the doubling wait; the default is `21600.0` (6 hours).",
        ),
        "django_openai_capi.E015": CheckId(
            "`OPENAI_CAPI_LEASE_SECONDS` is not a positive int.",
            "How long a worker owns a claimed batch; the default is 300.",
        ),
        "django_openai_capi.E016": CheckId(
            "`OPENAI_CAPI_INTEGRATION_SOURCE` does not fit the API's format.",
            "1-64 ASCII characters: a letter or digit first, then letters, digits, `.`, "
            "`_` or `-`.",
        ),
        "django_openai_capi.E017": CheckId(
            "`OPENAI_CAPI_RETENTION_DAYS` is not a positive int.",
            "The age in days past which `openai_capi_cleanup` deletes finished events.",
        ),
        "django_openai_capi.E018": CheckId(
            "`OPENAI_CAPI_ENDPOINT` contains credentials (`user:password@`).",
            "Remove them; the key goes in `OPENAI_CAPI_API_KEY` (a URL ends up in logs).",
        ),
        "django_openai_capi.E019": CheckId(
            "`OPENAI_CAPI_RAISE_ERRORS` is not `True` or `False` (`None` no longer "
            "follows `DEBUG`).",
            "`False` (the default) on servers; `True` in test settings.",
        ),
        "django_openai_capi.E020": CheckId(
            "`USE_TZ` is `False`: event times are sent as Unix milliseconds, which a "
            "naive local time cannot give.",
            "Set `USE_TZ = True` (Django's default).",
        ),
        "django_openai_capi.E021": CheckId(
            '`OPENAI_CAPI_DISPATCH` is `"task"` but no Tasks framework is installed '
            "(Django 5.2 without `django-tasks`).",
            'Install `django-tasks` and add `"django_tasks"` to `INSTALLED_APPS`, or '
            'set `OPENAI_CAPI_DISPATCH = "none"` and run `manage.py openai_capi_send`.',
        ),
        "django_openai_capi.E022": CheckId(
            '`OPENAI_CAPI_DISPATCH` is `"task"` but `TASKS` gives no usable backend '
            "for the task.",
            "Fix `TASKS` (the message says what failed), or set `OPENAI_CAPI_DISPATCH "
            '= "none"` and run `manage.py openai_capi_send`.',
        ),
        "django_openai_capi.E023": CheckId(
            "`OPENAI_CAPI_CONSENT` is not `None` or the dotted path of a callable.",
            'For example `"myshop.consent.may_measure"`, a function taking '
            "`(request, event)` and returning `True` or `False`.",
        ),
        "django_openai_capi.E024": CheckId(
            "`OPENAI_CAPI_TRUSTED_PROXIES` is not a list of IP addresses or networks.",
            'List your own proxies\' addresses or networks, e.g. `["10.0.0.0/8"]`.',
        ),
        "django_openai_capi.E025": CheckId(
            "`OPENAI_CAPI_OPPREF_COOKIE_AGE` is not a positive int.",
            "Seconds; the default is 2592000 (30 days).",
        ),
        "django_openai_capi.E026": CheckId(
            "`OPENAI_CAPI_STALE_AFTER` is not a positive number of seconds.",
            "The default is `900.0` (15 minutes).",
        ),
        "django_openai_capi.E027": CheckId(
            "`OPENAI_CAPI_MAIL_ADMINS` is not `True` or `False`.",
            "Read it as a bool (e.g. `env.bool`).",
        ),
        "django_openai_capi.W001": CheckId(
            "No API key while sending is enabled: events are recorded, never sent.",
            "Set `OPENAI_CAPI_API_KEY` (Ads Manager → Conversions), or "
            "`OPENAI_CAPI_SEND_ENABLED = False`.",
        ),
        "django_openai_capi.W002": CheckId(
            "`OPENAI_CAPI_PIXEL_ID` is not set.",
            "Copy your Pixel ID from Ads Manager → Conversions, or silence the "
            "warning if every conversion names its pixel.",
        ),
        "django_openai_capi.W003": CheckId(
            "`OPENAI_CAPI_ENDPOINT` has a query string or a fragment.",
            "Remove them: the app adds `?pid=<pixel id>` to every request itself.",
        ),
        "django_openai_capi.W004": CheckId(
            "`OPENAI_CAPI_VALIDATE_ONLY` is on while `DEBUG` is off: OpenAI checks "
            "every event and records none.",
            "Turn it off in production; on staging, silence the warning.",
        ),
        "django_openai_capi.W005": CheckId(
            "`OPENAI_CAPI_LEASE_SECONDS` is not above twice the whole-request deadline "
            "`OPENAI_CAPI_TIMEOUT` sets: a slow request can outlive its lease and its "
            "events be sent twice.",
            "Raise `OPENAI_CAPI_LEASE_SECONDS` or lower `OPENAI_CAPI_TIMEOUT`.",
        ),
        "django_openai_capi.W006": CheckId(
            "An unknown `OPENAI_CAPI_*` setting (a typo?); the message suggests the "
            "nearest name.",
            "Rename it, or remove it.",
        ),
        "django_openai_capi.W007": CheckId(
            "`OPENAI_CAPI_PIXEL_API_KEYS` has no entry for `OPENAI_CAPI_PIXEL_ID` and "
            "there is no `OPENAI_CAPI_API_KEY`: the default pixel's events are never "
            "sent.",
            "Add the pixel to `OPENAI_CAPI_PIXEL_API_KEYS`, or set "
            "`OPENAI_CAPI_API_KEY`.",
        ),
        "django_openai_capi.W008": CheckId(
            "`OPENAI_CAPI_ENDPOINT`'s host is `api.ads.openai.com`, the Advertiser API.",
            "Events go to `https://bzr.openai.com/v1/events`: use that URL, or remove "
            "the setting.",
        ),
        "django_openai_capi.W009": CheckId(
            '`OPENAI_CAPI_DISPATCH` is `"task"` on the `ImmediateBackend`: it sends '
            "inside the committing request.",
            "Configure a real backend in `TASKS` and run its worker, or set "
            '`OPENAI_CAPI_DISPATCH = "none"` and run `manage.py openai_capi_send --loop`.',
        ),
        "django_openai_capi.W010": CheckId(
            '`OPENAI_CAPI_DISPATCH` is `"task"` on the `DummyBackend`: the task never '
            "runs.",
            "Configure a real backend in `TASKS` and run its worker, or set "
            '`OPENAI_CAPI_DISPATCH = "none"` if `openai_capi_send` runs anyway.',
        ),
        "django_openai_capi.W011": CheckId(
            "`OPENAI_CAPI_TRUSTED_PROXIES` trusts every address (a `/0` network): any "
            "visitor could choose the IP reported for them.",
            "List only the networks of your own proxies.",
        ),
    }
)


def all_check_ids() -> dict[str, CheckId]:
    """Every check id of the app and its contrib apps, in :data:`CHECK_MODULES` order.

    Imports the contrib apps' check modules, which need none of their host packages.
    """
    found: dict[str, CheckId] = {}
    for module in CHECK_MODULES:
        found.update(importlib.import_module(module).CHECK_IDS)
    return found


# The Advertiser (management) API's host: the common wrong guess for where events go.
_ADVERTISER_API_HOST = "api.ads.openai.com"

_GET_A_KEY = (
    "Create a Conversions API key in Ads Manager → Conversions tab (scope "
    + "ads.third_party_events.write); an Advertiser API key will not work."
)


def check_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    for check in _CHECKS:
        messages.extend(check())
    return messages


# Value helpers. bool is an int subclass, but True is never a sensible count or number
# of seconds, so it is rejected everywhere a number is expected.


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_positive_int(value: object) -> TypeGuard[int]:
    return _is_int(value) and value > 0


def _is_positive_number(value: object) -> TypeGuard[float]:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and value > 0


# Credentials and pixels.


def _check_api_key() -> list[CheckMessage]:
    value = raw_setting("OPENAI_CAPI_API_KEY")
    if value is None:
        return []
    if not isinstance(value, str):
        return [
            Error(
                "OPENAI_CAPI_API_KEY should be a string or None.",
                hint=f"It is of type {type(value).__name__}; set it to the Conversions API key as a str.",
                id="django_openai_capi.E001",
            )
        ]
    problem = key_problem(value)
    if problem is None:
        return []
    return [
        Error(
            f"OPENAI_CAPI_API_KEY should be a key that can be sent; it {problem}.",
            hint="Strip the value where it is read (a key pasted into an env file often "
            + "ends in a newline), or set None to leave it unset.",
            id="django_openai_capi.E002",
        )
    ]


def _check_any_api_key() -> list[CheckMessage]:
    if raw_setting("OPENAI_CAPI_SEND_ENABLED") is not True:
        return []
    pixel_keys = raw_setting("OPENAI_CAPI_PIXEL_API_KEYS")
    if raw_setting("OPENAI_CAPI_API_KEY") is not None or not isinstance(
        pixel_keys, Mapping
    ):
        return []
    if pixel_keys:
        return []
    return [
        Warning(
            "OPENAI_CAPI_API_KEY should be set: events are recorded but not sent.",
            hint=_GET_A_KEY + " Or set OPENAI_CAPI_SEND_ENABLED = False.",
            id="django_openai_capi.W001",
        )
    ]


def _check_pixel_id() -> list[CheckMessage]:
    value = raw_setting("OPENAI_CAPI_PIXEL_ID")
    if value is None:
        return [
            Warning(
                "OPENAI_CAPI_PIXEL_ID should be set, or every conversion must name its pixel.",
                hint="Copy your Pixel ID from Ads Manager → Conversions, or silence "
                + "django_openai_capi.W002 if every conversion names its pixel.",
                id="django_openai_capi.W002",
            )
        ]
    if isinstance(value, str) and looks_like_api_key(value):
        # The pixel id travels in the URL's ?pid=, and from there into access logs.
        message = "OPENAI_CAPI_PIXEL_ID should be a Pixel ID; it looks like an API key."
        hint = (
            "The pixel id is sent in the URL (?pid=) and so lands in access logs: put the "
            + "key in OPENAI_CAPI_API_KEY and the Pixel ID from Ads Manager → Conversions here."
        )
    else:
        # The rule every conversion's own pixel id is held to when it is recorded.
        problem = pixel_id_problem(value, redact=redact)
        if problem is None:
            return []
        message = f"OPENAI_CAPI_PIXEL_ID should be a non-empty string without whitespace; it {problem}."
        hint = "Copy the Pixel ID from Ads Manager → Conversions, or set None for no default pixel."
    return [Error(message, hint=hint, id="django_openai_capi.E003")]


def _check_pixel_api_keys() -> list[CheckMessage]:
    value = raw_setting("OPENAI_CAPI_PIXEL_API_KEYS")
    if not isinstance(value, Mapping):
        return [
            _pixel_keys_error(
                f"OPENAI_CAPI_PIXEL_API_KEYS should be a dict; it is of type {type(value).__name__}.",
                hint="Map each pixel id to its Conversions API key, or use {} for none.",
            )
        ]
    errors = (_pixel_keys_entry_error(pixel_id, key) for pixel_id, key in value.items())
    return [error for error in errors if error is not None]


def _pixel_keys_entry_error(pixel_id: object, key: object) -> CheckMessage | None:
    if isinstance(pixel_id, str) and looks_like_api_key(pixel_id):
        # Probably {key: pixel_id} instead of {pixel_id: key}; naming it would leak it.
        return _pixel_keys_error(
            "OPENAI_CAPI_PIXEL_API_KEYS has a pixel id that looks like an API key.",
            hint="The dict maps pixel id → API key; check that it is not the other way round.",
        )
    pixel_problem = pixel_id_problem(pixel_id, redact=redact)
    if pixel_problem is not None:
        label = f" {pixel_id!r}" if isinstance(pixel_id, str) else ""
        return _pixel_keys_error(
            f"OPENAI_CAPI_PIXEL_API_KEYS has a pixel id{label} that {pixel_problem}.",
            hint="Use Pixel IDs from Ads Manager → Conversions as the dict's keys.",
        )
    problem = key_problem(key)
    if problem is None:
        return None
    return _pixel_keys_error(
        f"OPENAI_CAPI_PIXEL_API_KEYS[{pixel_id!r}] should be an API key that can be sent; "
        + f"it {problem}.",
        hint="Strip the key where it is read, or remove the pixel from the dict. "
        + _GET_A_KEY,
    )


def _pixel_keys_error(message: str, *, hint: str) -> CheckMessage:
    return Error(message, hint=hint, id="django_openai_capi.E004")


def _check_default_pixel_key() -> list[CheckMessage]:
    # W001 covers no key at all; this is the per-pixel dict in use, but not for the
    # default pixel, which then has no key. An invalid pixel id is left to E003.
    if raw_setting("OPENAI_CAPI_SEND_ENABLED") is not True:
        return []
    pixel_id = raw_setting("OPENAI_CAPI_PIXEL_ID")
    if (
        not isinstance(pixel_id, str)
        or pixel_id_problem(pixel_id, redact=redact) is not None
        or looks_like_api_key(pixel_id)
    ):
        return []
    api_key = raw_setting("OPENAI_CAPI_API_KEY")
    pixel_keys = raw_setting("OPENAI_CAPI_PIXEL_API_KEYS")
    if api_key not in (None, "") or not isinstance(pixel_keys, Mapping):
        return []
    if not pixel_keys or pixel_id in pixel_keys:
        return []
    return [
        Warning(
            f"OPENAI_CAPI_PIXEL_API_KEYS should have a key for OPENAI_CAPI_PIXEL_ID {pixel_id!r} "
            + "when OPENAI_CAPI_API_KEY is not set: its events are recorded but not sent.",
            hint=f"Add {pixel_id!r} to OPENAI_CAPI_PIXEL_API_KEYS, or set OPENAI_CAPI_API_KEY. "
            + _GET_A_KEY,
            id="django_openai_capi.W007",
        )
    ]


# Where requests go.


def _check_endpoint() -> list[CheckMessage]:
    parts = _split_http_url(raw_setting("OPENAI_CAPI_ENDPOINT"))
    if parts is None:
        return [
            Error(
                "OPENAI_CAPI_ENDPOINT should be an absolute http(s) URL with a host.",
                hint="Use the default https://bzr.openai.com/v1/events, or the full URL of a fake.",
                id="django_openai_capi.E005",
            )
        ]
    messages: list[CheckMessage] = []
    if "@" in parts.netloc:
        # Neither the URL nor its user info is quoted: the password may be a key.
        messages.append(
            Error(
                "OPENAI_CAPI_ENDPOINT should not contain credentials (user:password@ before the host).",
                hint="Remove them and put the Conversions API key in OPENAI_CAPI_API_KEY; "
                + "a URL ends up in logs and error messages.",
                id="django_openai_capi.E018",
            )
        )
    if parts.scheme == "http" and not is_loopback_host(parts.hostname or ""):
        messages.append(
            Error(
                "OPENAI_CAPI_ENDPOINT should use https:// unless its host is loopback.",
                hint="Over http:// the API key travels in clear text; use https://, or run the fake on localhost.",
                id="django_openai_capi.E006",
            )
        )
    if parts.query or parts.fragment:
        messages.append(
            Warning(
                "OPENAI_CAPI_ENDPOINT should have no query string or fragment.",
                hint="Remove them: the app adds ?pid=<pixel id> to every request itself.",
                id="django_openai_capi.W003",
            )
        )
    if (parts.hostname or "").rstrip(".") == _ADVERTISER_API_HOST:
        messages.append(
            Warning(
                f"OPENAI_CAPI_ENDPOINT should not point at {_ADVERTISER_API_HOST}, the "
                + "Advertiser API: it does not take conversion events.",
                hint="Events go to https://bzr.openai.com/v1/events: use that URL, or remove "
                + "the setting for the default.",
                id="django_openai_capi.W008",
            )
        )
    return messages


def _split_http_url(value: object) -> SplitResult | None:
    # urlsplit() silently drops some whitespace, so reject it first rather than send to
    # a URL that differs from the one configured.
    if not isinstance(value, str) or any(char.isspace() for char in value):
        return None
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts


# What is sent, and how.


def _check_bool(name: str, *, id: str) -> list[CheckMessage]:
    value = raw_setting(name)
    if isinstance(value, bool):
        return []
    return [
        Error(
            f"{name} should be True or False.",
            hint=f"It is of type {type(value).__name__}; read it as a bool (e.g. env.bool).",
            id=id,
        )
    ]


def _check_send_enabled() -> list[CheckMessage]:
    return _check_bool("OPENAI_CAPI_SEND_ENABLED", id="django_openai_capi.E007")


def _check_validate_only() -> list[CheckMessage]:
    errors = _check_bool("OPENAI_CAPI_VALIDATE_ONLY", id="django_openai_capi.E008")
    if errors or raw_setting("OPENAI_CAPI_VALIDATE_ONLY") is False or settings.DEBUG:
        return errors
    return [
        Warning(
            "OPENAI_CAPI_VALIDATE_ONLY should be False when DEBUG is False.",
            hint="Validate-only requests are checked but not recorded by OpenAI: "
            + "keep it for staging and silence django_openai_capi.W004 there.",
            id="django_openai_capi.W004",
        )
    ]


def _check_dispatch() -> list[CheckMessage]:
    value = raw_setting("OPENAI_CAPI_DISPATCH")
    choices = get_args(Dispatch)
    if isinstance(value, str) and value in choices:
        return []
    return [
        Error(
            'OPENAI_CAPI_DISPATCH should be "task", "inline" or "none".',
            hint='Use "task" to send through the Tasks framework, "inline" to send on '
            + 'commit in-process, or "none" to leave it to manage.py openai_capi_send.',
            id="django_openai_capi.E009",
        )
    ]


def _check_batch_size() -> list[CheckMessage]:
    value = raw_setting("OPENAI_CAPI_BATCH_SIZE")
    if _is_int(value) and 1 <= value <= 1000:
        return []
    return [
        Error(
            f"OPENAI_CAPI_BATCH_SIZE should be an int from 1 to 1000, got {given(value)}.",
            hint="The API takes at most 1,000 events per request; the default is 1000.",
            id="django_openai_capi.E010",
        )
    ]


def _check_timeout() -> list[CheckMessage]:
    if _request_deadline(raw_setting("OPENAI_CAPI_TIMEOUT")) is not None:
        return []
    return [
        Error(
            "OPENAI_CAPI_TIMEOUT should be positive seconds or a (connect, read) tuple.",
            hint="For example 10.0, or (3.05, 10.0); a list or None is not accepted.",
            id="django_openai_capi.E011",
        )
    ]


def _request_deadline(value: object) -> float | None:
    """The seconds a whole request may take under *value*; None if it is no valid timeout."""
    if _is_positive_number(value):
        return request_deadline(value)
    if isinstance(value, tuple) and len(value) == 2:
        connect, read = value
        if _is_positive_number(connect) and _is_positive_number(read):
            return request_deadline((connect, read))
    return None


def _check_positive_int(name: str, *, id: str, hint: str) -> list[CheckMessage]:
    if _is_positive_int(raw_setting(name)):
        return []
    return [Error(f"{name} should be a positive int.", hint=hint, id=id)]


# Retries and leases.


def _check_max_attempts() -> list[CheckMessage]:
    return _check_positive_int(
        "OPENAI_CAPI_MAX_ATTEMPTS",
        id="django_openai_capi.E012",
        hint="Attempts per event, the first included; the default 20 keeps retrying for about 2.6 days.",
    )


def _check_retry_backoff() -> list[CheckMessage]:
    if _is_positive_number(raw_setting("OPENAI_CAPI_RETRY_BACKOFF")):
        return []
    return [
        Error(
            "OPENAI_CAPI_RETRY_BACKOFF should be a positive number of seconds.",
            hint="It is the wait before the first retry (it then doubles); the default is 30.0.",
            id="django_openai_capi.E013",
        )
    ]


def _check_retry_backoff_max() -> list[CheckMessage]:
    backoff_max = raw_setting("OPENAI_CAPI_RETRY_BACKOFF_MAX")
    backoff = raw_setting("OPENAI_CAPI_RETRY_BACKOFF")
    if _is_positive_number(backoff_max) and (
        not _is_positive_number(backoff) or backoff_max >= backoff
    ):
        return []
    return [
        Error(
            "OPENAI_CAPI_RETRY_BACKOFF_MAX should be seconds >= OPENAI_CAPI_RETRY_BACKOFF.",
            hint="It caps the doubling wait between attempts; the default is 21600.0 (6 hours).",
            id="django_openai_capi.E014",
        )
    ]


def _check_lease_seconds() -> list[CheckMessage]:
    errors = _check_positive_int(
        "OPENAI_CAPI_LEASE_SECONDS",
        id="django_openai_capi.E015",
        hint="It is how long a worker owns a claimed batch; the default is 300.",
    )
    lease = raw_setting("OPENAI_CAPI_LEASE_SECONDS")
    deadline = _request_deadline(raw_setting("OPENAI_CAPI_TIMEOUT"))
    if errors or deadline is None or not _is_int(lease) or lease > 2 * deadline:
        return errors
    return [
        Warning(
            f"OPENAI_CAPI_LEASE_SECONDS should be more than twice the {deadline:g} s "
            + "OPENAI_CAPI_TIMEOUT allows a whole request.",
            hint="A request is cut at that deadline (for a (connect, read) pair, their "
            + "sum); with a shorter lease, a slow request and the recording of its "
            + "answer can outlast it, and its events be taken back and sent twice. "
            + "Raise OPENAI_CAPI_LEASE_SECONDS or lower OPENAI_CAPI_TIMEOUT.",
            id="django_openai_capi.W005",
        )
    ]


# Everything else.


def _check_integration_source() -> list[CheckMessage]:
    value = raw_setting("OPENAI_CAPI_INTEGRATION_SOURCE")
    if value is None:
        return []
    if spec.is_integration_source(value):
        return []
    return [
        Error(
            "OPENAI_CAPI_INTEGRATION_SOURCE should be an id like acme_measurement, or None.",
            hint="1-64 ASCII characters: a letter or digit first, then letters, digits, '.', '_' or '-'.",
            id="django_openai_capi.E016",
        )
    ]


def _check_retention_days() -> list[CheckMessage]:
    return _check_positive_int(
        "OPENAI_CAPI_RETENTION_DAYS",
        id="django_openai_capi.E017",
        hint="It is the age in days past which openai_capi_cleanup deletes finished events.",
    )


def _check_raise_errors() -> list[CheckMessage]:
    value = raw_setting("OPENAI_CAPI_RAISE_ERRORS")
    if isinstance(value, bool):
        return []
    # None is named: it once meant "follow DEBUG", and would now quietly mean False.
    shown = "None" if value is None else type(value).__name__
    return [
        Error(
            f"OPENAI_CAPI_RAISE_ERRORS should be True or False, not {shown}.",
            hint="False (the default, whatever DEBUG says) records a broken conversion "
            + "as a failed event and keeps the host's save; set True in test settings, "
            + "so that a broken conversion fails the test that caused it.",
            id="django_openai_capi.E019",
        )
    ]


def _check_use_tz() -> list[CheckMessage]:
    if getattr(settings, "USE_TZ", True):
        return []
    return [
        Error(
            "django-openai-capi needs USE_TZ = True.",
            hint="Event times are sent as Unix milliseconds, which a naive local time "
            + "cannot give without guessing; USE_TZ = True is Django's default.",
            id="django_openai_capi.E020",
        )
    ]


def _check_unknown_settings() -> list[CheckMessage]:
    unknown = sorted(
        name
        for name in dir(settings)
        if name.startswith(PREFIX) and name not in SETTING_NAMES
    )
    return [_unknown_setting_warning(name) for name in unknown]


def _unknown_setting_warning(name: str) -> CheckMessage:
    # Compare without the shared prefix, which would make every name look close.
    suffixes = [known.removeprefix(PREFIX) for known in SETTING_NAMES]
    close = difflib.get_close_matches(name.removeprefix(PREFIX), suffixes, n=1)
    if close:
        message = f"{name} is not a django-openai-capi setting; did you mean {PREFIX}{close[0]}?"
        hint = f"Rename it to {PREFIX}{close[0]}."
    else:
        message = f"{name} is not a django-openai-capi setting and has no effect."
        hint = "Check its spelling against the settings listed in the README, or remove it."
    return Warning(message, hint=hint, id="django_openai_capi.W006")


# Dispatch through the Tasks framework.


def _check_tasks_backend() -> list[CheckMessage]:
    if raw_setting("OPENAI_CAPI_DISPATCH") != "task":
        return []
    framework = tasks_framework()
    if framework is None:
        return [
            Error(
                'OPENAI_CAPI_DISPATCH = "task" needs the Tasks framework: Django 6, or '
                + "the django-tasks backport on Django 5.2.",
                hint='Install django-tasks (pip install "django-tasks>=0.12") and add '
                + '"django_tasks" to INSTALLED_APPS, or set OPENAI_CAPI_DISPATCH = "none" '
                + "and run manage.py openai_capi_send.",
                id="django_openai_capi.E021",
            )
        ]
    try:
        # Defining the task loads its backend, so a broken TASKS setting fails here
        # as it would on the first commit: catch it to report it.
        from django_openai_capi.tasks import send_pending_events

        backend = importlib.import_module(framework).task_backends[
            send_pending_events.backend
        ]
    except Exception as exc:
        return [
            Error(
                'OPENAI_CAPI_DISPATCH = "task" needs a Tasks backend, and the TASKS '
                + "setting does not give one.",
                hint=" ".join(describe_exception(exc).split())
                + '. Fix TASKS, or set OPENAI_CAPI_DISPATCH = "none" and run '
                + "manage.py openai_capi_send.",
                id="django_openai_capi.E022",
            )
        ]
    immediate = importlib.import_module(f"{framework}.backends.immediate")
    dummy = importlib.import_module(f"{framework}.backends.dummy")
    if isinstance(backend, immediate.ImmediateBackend):
        return [
            Warning(
                'OPENAI_CAPI_DISPATCH = "task" should have a Tasks backend with a worker: '
                + "the ImmediateBackend sends inside the committing request, synchronously.",
                hint="Configure a real backend in TASKS (django-tasks-db's DatabaseBackend, "
                + 'RQ, Celery) and run its worker, or set OPENAI_CAPI_DISPATCH = "none" '
                + "and run manage.py openai_capi_send --loop, the worker that sends "
                + "every recorded event in any mode.",
                id="django_openai_capi.W009",
            )
        ]
    if isinstance(backend, dummy.DummyBackend):
        return [
            Warning(
                'OPENAI_CAPI_DISPATCH = "task" should have a Tasks backend that runs tasks: '
                + "the DummyBackend never does, so nothing is sent unless "
                + "manage.py openai_capi_send runs.",
                hint="Configure a real backend in TASKS and run its worker, or set "
                + 'OPENAI_CAPI_DISPATCH = "none" if openai_capi_send runs anyway.',
                id="django_openai_capi.W010",
            )
        ]
    return []


# The browser side.


def _check_consent() -> list[CheckMessage]:
    value = raw_setting("OPENAI_CAPI_CONSENT")
    if value is None:
        return []
    if not isinstance(value, str):
        problem = f"it is of type {type(value).__name__}"
    else:
        try:
            found = import_string(value)
        except Exception as exc:
            reason = " ".join(describe_exception(exc).split())
            problem = f"it cannot be imported ({reason})"
        else:
            if callable(found):
                return []
            problem = (
                f"it names an object of type {type(found).__name__}, not a callable"
            )
    return [
        Error(
            "OPENAI_CAPI_CONSENT should be None or the dotted path of a callable; "
            + f"{problem}.",
            hint='For example "myshop.consent.may_measure", a function taking '
            + "(request, event) and returning True or False. None records every event.",
            id="django_openai_capi.E023",
        )
    ]


def _check_trusted_proxies() -> list[CheckMessage]:
    value = raw_setting("OPENAI_CAPI_TRUSTED_PROXIES")
    if isinstance(value, str) or not isinstance(value, list | tuple):
        return [
            _proxies_error(
                "OPENAI_CAPI_TRUSTED_PROXIES should be a list of IP addresses or networks; "
                + f"it is of type {type(value).__name__}."
            )
        ]
    messages: list[CheckMessage] = []
    for entry in value:
        try:
            if not isinstance(entry, str):  # ip_network() would take 10 as 0.0.0.10
                raise TypeError(entry)
            network = ipaddress.ip_network(entry, strict=False)
        except (TypeError, ValueError):
            label = repr(entry) if isinstance(entry, str) else type(entry).__name__
            messages.append(
                _proxies_error(
                    f"OPENAI_CAPI_TRUSTED_PROXIES has {label}, which is not an IP "
                    + "address or network."
                )
            )
            continue
        if network.prefixlen == 0:
            messages.append(
                Warning(
                    f"OPENAI_CAPI_TRUSTED_PROXIES should not trust every address ({network}).",
                    hint="Then any visitor chooses the IP reported for them by sending "
                    + "X-Forwarded-For: list only the networks of your own proxies.",
                    id="django_openai_capi.W011",
                )
            )
    return messages


def _proxies_error(message: str) -> CheckMessage:
    return Error(
        message,
        hint='A list of the addresses or networks of your own proxies, e.g. ["10.0.0.0/8"]; '
        + "[] when the site is reached directly.",
        id="django_openai_capi.E024",
    )


def _check_oppref_cookie_age() -> list[CheckMessage]:
    return _check_positive_int(
        "OPENAI_CAPI_OPPREF_COOKIE_AGE",
        id="django_openai_capi.E025",
        hint="It is the __oppref cookie's lifetime in seconds; the default is 2592000 (30 days).",
    )


def _check_stale_after() -> list[CheckMessage]:
    if _is_positive_number(raw_setting("OPENAI_CAPI_STALE_AFTER")):
        return []
    return [
        Error(
            "OPENAI_CAPI_STALE_AFTER should be a positive number of seconds.",
            hint="It is how long events may be due before delivery counts as stopped "
            + "(no worker running); the default is 900 (15 minutes).",
            id="django_openai_capi.E026",
        )
    ]


def _check_mail_admins() -> list[CheckMessage]:
    return _check_bool("OPENAI_CAPI_MAIL_ADMINS", id="django_openai_capi.E027")


_CHECKS: tuple[Callable[[], list[CheckMessage]], ...] = (
    _check_api_key,
    _check_any_api_key,
    _check_pixel_id,
    _check_pixel_api_keys,
    _check_default_pixel_key,
    _check_endpoint,
    _check_send_enabled,
    _check_validate_only,
    _check_dispatch,
    _check_batch_size,
    _check_timeout,
    _check_max_attempts,
    _check_retry_backoff,
    _check_retry_backoff_max,
    _check_lease_seconds,
    _check_integration_source,
    _check_retention_days,
    _check_raise_errors,
    _check_use_tz,
    _check_unknown_settings,
    _check_tasks_backend,
    _check_consent,
    _check_trusted_proxies,
    _check_oppref_cookie_age,
    _check_stale_after,
    _check_mail_admins,
)
