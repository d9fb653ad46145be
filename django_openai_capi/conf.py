"""Typed, read-through access to the ``OPENAI_CAPI_*`` settings.

Every property reads ``django.conf.settings`` on every access (nothing is cached), so
``override_settings`` needs no ``setting_changed`` hook. Nothing here validates a value:
wrong values are reported by ``manage.py check`` (``checks.py``), and the two methods
that need a value to exist raise :class:`CapiConfigurationError` when it does not. The
exception is the API key, which :func:`key_problem` checks wherever it is read: a key
that cannot be sent would otherwise fail every request of a worker that never runs the
checks.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal, TypeAlias

from django.conf import settings

from django_openai_capi.exceptions import CapiConfigurationError, UnusableApiKeyError

Dispatch: TypeAlias = Literal["task", "inline", "none"]
#: Seconds, or a ``(connect, read)`` pair, as ``requests`` takes it.
Timeout: TypeAlias = float | tuple[float, float]


def request_deadline(timeout: Timeout) -> float:
    """The seconds a whole request may take under *timeout* (``OPENAI_CAPI_TIMEOUT``).

    A number bounds the whole request: connecting, sending and reading the answer. A
    ``(connect, read)`` pair bounds connecting by *connect*, each wait for the answer by
    *read*, and the whole request by their sum.
    """
    if isinstance(timeout, tuple):
        connect, read = timeout
        return connect + read
    return timeout


def is_loopback_host(host: str) -> bool:
    """Whether *host* (an endpoint's hostname) is this machine: a local fake, a tunnel."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# The single source of the defaults: conf reads them, and the checks read raw values
# through them, so the two can never disagree. Read-only, so that no caller can change a
# default for everyone by mutating what a property returned.
DEFAULTS: Mapping[str, object] = MappingProxyType(
    {
        "OPENAI_CAPI_API_KEY": None,
        "OPENAI_CAPI_PIXEL_ID": None,
        "OPENAI_CAPI_PIXEL_API_KEYS": MappingProxyType({}),
        "OPENAI_CAPI_ENDPOINT": "https://bzr.openai.com/v1/events",
        "OPENAI_CAPI_SEND_ENABLED": True,
        "OPENAI_CAPI_VALIDATE_ONLY": False,
        "OPENAI_CAPI_DISPATCH": "task",
        "OPENAI_CAPI_BATCH_SIZE": 1000,
        "OPENAI_CAPI_TIMEOUT": 10.0,
        # Retries wait OPENAI_CAPI_RETRY_BACKOFF seconds, doubling each attempt, capped
        # at OPENAI_CAPI_RETRY_BACKOFF_MAX. With 20 attempts the 19 waits add up to
        # about 2.6 days (30 s ... 4.3 h, then 6 h each), comfortably inside the API's
        # 7-day timestamp window, so an event is retried for days and still expires
        # rather than being retried forever.
        "OPENAI_CAPI_MAX_ATTEMPTS": 20,
        "OPENAI_CAPI_RETRY_BACKOFF": 30.0,
        "OPENAI_CAPI_RETRY_BACKOFF_MAX": 21600.0,
        "OPENAI_CAPI_LEASE_SECONDS": 300,
        "OPENAI_CAPI_INTEGRATION_SOURCE": None,
        "OPENAI_CAPI_RETENTION_DAYS": 30,
        # Not DEBUG: a staging server runs with DEBUG = True, and raising there would
        # roll back the very orders it is meant to try out.
        "OPENAI_CAPI_RAISE_ERRORS": False,
        # The browser side (middleware, template tags) and consent.
        # Dotted path to consent(request, event) -> bool; None: every event may be recorded.
        "OPENAI_CAPI_CONSENT": None,
        # IPs or networks of the proxies in front of the site, whose X-Forwarded-For
        # hop is trusted; empty: the client IP is REMOTE_ADDR.
        "OPENAI_CAPI_TRUSTED_PROXIES": (),
        # The __oppref cookie's lifetime in seconds. OpenAI documents none; 30 days is
        # what practitioners and other connectors use (conversions-api.md §10).
        "OPENAI_CAPI_OPPREF_COOKIE_AGE": 30 * 24 * 60 * 60,
        # Monitoring (health.py, alerts.py). Events due for longer than this mean no
        # worker is keeping up: 15 minutes is well past any worker's normal wait
        # (a --loop's interval, a cron's minute) and still "within minutes".
        "OPENAI_CAPI_STALE_AFTER": 900.0,
        # Email ADMINS (mail_admins) once per change of a pixel's state.
        "OPENAI_CAPI_MAIL_ADMINS": True,
        # contrib.auth and contrib.allauth: dotted path of the ModelConversion they
        # register for AUTH_USER_MODEL; None: the installed app's own class.
        "OPENAI_CAPI_USER_CONVERSION": None,
        # django_openai_capi.contrib.oscar: the conversion it registers for Oscar's
        # Order, a dotted path to a ModelConversion subclass (check oscar.E003).
        "OPENAI_CAPI_OSCAR_CONVERSION": (
            "django_openai_capi.contrib.oscar.conversions.OrderConversion"
        ),
    }
)

SETTING_NAMES: tuple[str, ...] = tuple(DEFAULTS)

# What each setting means, for the settings reference (docs/reference/settings.md, made
# by docs/_ext/capi_reference.py): kept beside DEFAULTS, with the same keys (a test says
# so), so that the reference cannot fall behind the code. Markdown.
DESCRIPTIONS: Mapping[str, str] = MappingProxyType(
    {
        "OPENAI_CAPI_API_KEY": (
            "Conversions API key (scope `ads.third_party_events.write`); required to "
            "send. Never logged, stored or shown."
        ),
        "OPENAI_CAPI_PIXEL_ID": (
            "Default Pixel ID; a conversion may target another pixel."
        ),
        "OPENAI_CAPI_PIXEL_API_KEYS": (
            "`{pixel_id: api_key}` for pixels of other ad accounts than the default "
            "key's; a key here wins over `OPENAI_CAPI_API_KEY` for its pixel."
        ),
        "OPENAI_CAPI_ENDPOINT": (
            "Where events are sent, without `?pid=` (the app adds it per request); "
            "point tests, demos and staging at a fake."
        ),
        "OPENAI_CAPI_SEND_ENABLED": (
            "Kill switch: with `False`, events are still recorded but nothing is sent."
        ),
        "OPENAI_CAPI_VALIDATE_ONLY": (
            "Send every request with `validate_only: true`: OpenAI checks the events "
            "but records nothing (for staging)."
        ),
        "OPENAI_CAPI_DISPATCH": (
            '`"task"`: enqueue a Tasks-framework task on commit; `"inline"`: send '
            'in-process on commit; `"none"`: only the worker command '
            "(`openai_capi_send`) sends."
        ),
        "OPENAI_CAPI_BATCH_SIZE": "Events per request, 1 to 1000 (the API's limit).",
        "OPENAI_CAPI_TIMEOUT": (
            "The most one HTTP request may take, in seconds: connecting, sending and "
            "reading the whole answer. A server still sending at that point is cut "
            "off, and the batch retried, unless its answer was already a 2xx: the "
            "events were accepted, and the 2xx stands however its body ends. A "
            "`(connect, read)` pair bounds connecting and each wait by its parts, and "
            "the whole request by their sum."
        ),
        "OPENAI_CAPI_MAX_ATTEMPTS": ("Attempts before an event is given up as failed."),
        "OPENAI_CAPI_RETRY_BACKOFF": (
            "First retry delay in seconds; doubles with each attempt."
        ),
        "OPENAI_CAPI_RETRY_BACKOFF_MAX": (
            "Longest retry delay in seconds (6 hours). With the defaults, the 19 waits "
            "of 20 attempts add up to about 2.6 days, inside the API's 7-day window."
        ),
        "OPENAI_CAPI_LEASE_SECONDS": (
            "How long a worker holds a claimed batch before another may take it back. "
            "Keep it above twice the whole-request deadline `OPENAI_CAPI_TIMEOUT` "
            "sets (W005), or a slow request can outlive its lease and the batch be "
            "sent twice."
        ),
        "OPENAI_CAPI_INTEGRATION_SOURCE": (
            "Optional `integration_source` sent with every request."
        ),
        "OPENAI_CAPI_RETENTION_DAYS": (
            "Age in days of the delivered events the cleanup command "
            "(`openai_capi_cleanup`) deletes by default."
        ),
        "OPENAI_CAPI_RAISE_ERRORS": (
            "Raise when a conversion cannot be built, instead of recording it as "
            "failed. `False` whatever `DEBUG` says. Set `True` in test settings, "
            "never on a server: raised in a save, it rolls the order back."
        ),
        "OPENAI_CAPI_CONSENT": (
            "Dotted path of `consent(request, event) -> bool`; `None`: every event "
            "may be recorded."
        ),
        "OPENAI_CAPI_TRUSTED_PROXIES": (
            'IPs or networks (`"10.0.0.0/8"`) of your own proxies, whose '
            "`X-Forwarded-For` hop is believed; empty: the client IP is `REMOTE_ADDR`."
        ),
        "OPENAI_CAPI_OPPREF_COOKIE_AGE": (
            "Lifetime in seconds of the `__oppref` cookie the middleware sets "
            "(30 days)."
        ),
        "OPENAI_CAPI_STALE_AFTER": (
            "Seconds events may be due before delivery counts as stopped (15 minutes): "
            "no worker running, or too few. Past it, `openai_capi_status` and the "
            "health check report the pixel as unhealthy, `openai_capi_send` exits "
            "with status 5, and `ADMINS` are told."
        ),
        "OPENAI_CAPI_MAIL_ADMINS": (
            "Email `ADMINS` (`mail_admins`) when a pixel's delivery goes wrong or "
            "recovers, once per change. `False`: the log and the `delivery_alert` "
            "signal only."
        ),
        "OPENAI_CAPI_USER_CONVERSION": (
            "Dotted path of the `ModelConversion` subclass that `contrib.auth` / "
            "`contrib.allauth` register for `AUTH_USER_MODEL`. `None`: the installed "
            "app's own class."
        ),
        "OPENAI_CAPI_OSCAR_CONVERSION": (
            "Dotted path of the `ModelConversion` subclass `contrib.oscar` registers "
            "for Oscar's `Order`; name a subclass of the default to change what an "
            "order sends."
        ),
    }
)

#: Django's own settings the app depends on, and why, for the settings reference.
DJANGO_SETTINGS: Mapping[str, str] = MappingProxyType(
    {
        "USE_TZ": (
            "Must be `True` (Django's default): event times are sent as Unix "
            "milliseconds, which a naive local time cannot give (E020)."
        ),
    }
)


def raw_setting(name: str) -> object:
    """Return the setting as configured, or its default, without assuming its type.

    For ``checks.py``: typed as ``object`` so every use must narrow it first.
    """
    return _read(name)


def _read(name: str) -> Any:
    return getattr(settings, name, DEFAULTS[name])


#: What a bearer token may hold (RFC 6750 §2.1): a Conversions API key always fits, and
#: a value that does not was not pasted as the key alone (quotes, a newline, a space).
_BEARER_TOKEN = re.compile(r"[A-Za-z0-9._~+/-]+=*")


def key_problem(key: object) -> str | None:
    """What keeps *key* from being sent as an API key; ``None`` when nothing does.

    The one rule for a usable key: :meth:`Settings.api_key_for` (so every request, the
    worker, ``openai_capi_verify``) and ``manage.py check`` apply it. The answer
    describes the value without quoting it, so it can be logged.
    """
    if not isinstance(key, str):
        return f"is of type {type(key).__name__}, not a string"
    if not key:
        return "is empty"
    if not key.strip():
        return "is only whitespace"
    if key != key.strip():
        return "starts or ends with whitespace (a newline from a secrets file?)"
    if any(char.isspace() for char in key):
        return "contains whitespace"
    if len(key) > 1 and key[0] == key[-1] and key[0] in "'\"":
        return "is wrapped in quotes"
    if _BEARER_TOKEN.fullmatch(key) is None:
        return (
            "has characters that cannot be sent in an HTTP header as a bearer token "
            + "(only ASCII letters, digits and - . _ ~ + /, with = at the end)"
        )
    return None


class Settings:
    """Read-through, typed view of the OPENAI_CAPI_* settings (no caching)."""

    @property
    def OPENAI_CAPI_API_KEY(self) -> str | None:
        """The Conversions API key (scope ``ads.third_party_events.write``).

        Never log, store or display it. Prefer :meth:`api_key_for`, which also honours
        ``OPENAI_CAPI_PIXEL_API_KEYS``.
        """
        value: str | None = _read("OPENAI_CAPI_API_KEY")
        return value

    @property
    def OPENAI_CAPI_PIXEL_ID(self) -> str | None:
        """The pixel a conversion goes to when it does not name one."""
        value: str | None = _read("OPENAI_CAPI_PIXEL_ID")
        return value

    @property
    def OPENAI_CAPI_PIXEL_API_KEYS(self) -> Mapping[str, str]:
        """``{pixel_id: api_key}`` for pixels of other ad accounts than the default key's."""
        value: Mapping[str, str] = _read("OPENAI_CAPI_PIXEL_API_KEYS")
        return value

    @property
    def OPENAI_CAPI_ENDPOINT(self) -> str:
        """The events URL, without ``?pid=`` (the app adds it per request)."""
        value: str = _read("OPENAI_CAPI_ENDPOINT")
        return value

    @property
    def OPENAI_CAPI_SEND_ENABLED(self) -> bool:
        """Kill switch: when False, events are still recorded but nothing is sent."""
        value: bool = _read("OPENAI_CAPI_SEND_ENABLED")
        return value

    @property
    def OPENAI_CAPI_VALIDATE_ONLY(self) -> bool:
        """Send every request with ``validate_only: true``: OpenAI checks but records nothing."""
        value: bool = _read("OPENAI_CAPI_VALIDATE_ONLY")
        return value

    @property
    def OPENAI_CAPI_DISPATCH(self) -> Dispatch:
        """How a committed event is sent.

        ``"task"`` enqueues a Tasks-framework task on commit, ``"inline"`` sends in the
        committing process, ``"none"`` leaves it to ``manage.py openai_capi_send``.
        """
        value: Dispatch = _read("OPENAI_CAPI_DISPATCH")
        return value

    @property
    def OPENAI_CAPI_BATCH_SIZE(self) -> int:
        """Events per request, 1 to 1,000 (the API's limit)."""
        value: int = _read("OPENAI_CAPI_BATCH_SIZE")
        return value

    @property
    def OPENAI_CAPI_TIMEOUT(self) -> Timeout:
        """The most a whole request may take, in seconds, or a ``(connect, read)`` pair.

        See :func:`request_deadline`: the client cuts a request at that deadline, however
        slowly the server keeps sending, and the lease must outlast it (W005).
        """
        value: Timeout = _read("OPENAI_CAPI_TIMEOUT")
        return value

    @property
    def OPENAI_CAPI_MAX_ATTEMPTS(self) -> int:
        """Attempts per event before it is marked failed."""
        value: int = _read("OPENAI_CAPI_MAX_ATTEMPTS")
        return value

    @property
    def OPENAI_CAPI_RETRY_BACKOFF(self) -> float:
        """Seconds before the first retry; the wait doubles with each attempt."""
        value: float = _read("OPENAI_CAPI_RETRY_BACKOFF")
        return value

    @property
    def OPENAI_CAPI_RETRY_BACKOFF_MAX(self) -> float:
        """The longest wait between two attempts, in seconds."""
        value: float = _read("OPENAI_CAPI_RETRY_BACKOFF_MAX")
        return value

    @property
    def OPENAI_CAPI_LEASE_SECONDS(self) -> int:
        """How long a worker owns a claimed batch before another may take it back.

        Keep it well above the whole-request deadline (``OPENAI_CAPI_TIMEOUT``), or a
        slow request can outlive its lease and the batch be sent twice.
        """
        value: int = _read("OPENAI_CAPI_LEASE_SECONDS")
        return value

    @property
    def OPENAI_CAPI_INTEGRATION_SOURCE(self) -> str | None:
        """Optional ``integration_source`` sent with every request."""
        value: str | None = _read("OPENAI_CAPI_INTEGRATION_SOURCE")
        return value

    @property
    def OPENAI_CAPI_RETENTION_DAYS(self) -> int:
        """Age in days beyond which ``openai_capi_cleanup`` deletes finished events."""
        value: int = _read("OPENAI_CAPI_RETENTION_DAYS")
        return value

    @property
    def OPENAI_CAPI_RAISE_ERRORS(self) -> bool:
        """Whether a conversion that cannot be built raises instead of being recorded as failed.

        ``False`` by default, whatever ``DEBUG`` says: raising inside a save rolls the
        host's transaction back, order and all. Test settings should set it to True, so
        that a broken conversion fails the test that caused it.
        """
        # Anything but True (E019 reports it) keeps the host's save.
        return _read("OPENAI_CAPI_RAISE_ERRORS") is True

    @property
    def OPENAI_CAPI_CONSENT(self) -> str | None:
        """Dotted path to the consent callable, ``consent(request, event) -> bool``.

        ``None``: every event may be recorded. See ``tracking/consent.py``.
        """
        value: str | None = _read("OPENAI_CAPI_CONSENT")
        return value

    @property
    def OPENAI_CAPI_TRUSTED_PROXIES(self) -> Sequence[str]:
        """IP addresses or networks (``"10.0.0.0/8"``) of the site's own proxies.

        A request from one of them has its client IP read from ``X-Forwarded-For``,
        right to left, skipping the trusted hops. Empty: ``REMOTE_ADDR``.
        """
        value: Sequence[str] = _read("OPENAI_CAPI_TRUSTED_PROXIES")
        return value

    @property
    def OPENAI_CAPI_OPPREF_COOKIE_AGE(self) -> int:
        """Seconds the middleware's ``__oppref`` cookie lasts (default 30 days)."""
        value: int = _read("OPENAI_CAPI_OPPREF_COOKIE_AGE")
        return value

    @property
    def OPENAI_CAPI_STALE_AFTER(self) -> float:
        """Seconds events may be due before delivery counts as stopped (default 900).

        Past it, ``openai_capi_status`` and the health check report the pixel as
        unhealthy, ``openai_capi_send`` exits with status 5, and ADMINS are told.
        """
        value: float = _read("OPENAI_CAPI_STALE_AFTER")
        return value

    @property
    def OPENAI_CAPI_MAIL_ADMINS(self) -> bool:
        """Email ``ADMINS`` when a pixel's delivery goes wrong or recovers (default True)."""
        return _read("OPENAI_CAPI_MAIL_ADMINS") is not False

    @property
    def OPENAI_CAPI_USER_CONVERSION(self) -> str | None:
        """Dotted path of the sign-up conversion ``contrib.auth``/``contrib.allauth`` register.

        A :class:`~django_openai_capi.ModelConversion` subclass, usually of the installed
        app's own class. ``None``: that class as it ships. Checked by the app's checks.
        """
        value: str | None = _read("OPENAI_CAPI_USER_CONVERSION")
        return value

    @property
    def OPENAI_CAPI_OSCAR_CONVERSION(self) -> str:
        """Dotted path to the conversion ``contrib.oscar`` registers for Oscar's Order.

        Default: its own ``OrderConversion``; name a subclass of it to change what an
        order sends. ``manage.py check`` reports a path that cannot be used (E003).
        """
        value: str = _read("OPENAI_CAPI_OSCAR_CONVERSION")
        return value

    def api_key_for(self, pixel_id: str) -> str:
        """Return the Conversions API key for *pixel_id*, checked by :func:`key_problem`.

        A key in ``OPENAI_CAPI_PIXEL_API_KEYS`` wins over ``OPENAI_CAPI_API_KEY``.
        Raises :class:`CapiConfigurationError` when neither gives one, and
        :class:`UnusableApiKeyError` when the one it gives cannot be sent. Every request
        and every check before one (the worker, ``openai_capi_verify``, validation)
        reads the key here, so they cannot disagree about it.
        """
        key: object = (
            self.OPENAI_CAPI_PIXEL_API_KEYS.get(pixel_id) or self.OPENAI_CAPI_API_KEY
        )
        if not key:
            # The message names settings and the pixel, never a key: it ends up in logs.
            raise CapiConfigurationError(
                f"No Conversions API key for pixel {pixel_id!r}: set OPENAI_CAPI_API_KEY, "
                + f"or add {pixel_id!r} to OPENAI_CAPI_PIXEL_API_KEYS. Create the key in "
                + "Ads Manager → Conversions (scope ads.third_party_events.write)."
            )
        problem = key_problem(key)
        if problem is not None:
            setting = self.key_setting(pixel_id)
            raise UnusableApiKeyError(
                f"{setting} cannot be used as the Conversions API key for pixel "
                + f"{pixel_id!r}: it {problem}. Set it to the key exactly as Ads Manager "
                + "→ Conversions shows it, stripped where it is read (manage.py check "
                + "reports this too).",
                setting=setting,
            )
        assert isinstance(key, str)
        return key

    def key_setting(self, pixel_id: str) -> str:
        """The setting :meth:`api_key_for` reads *pixel_id*'s key from (never the key)."""
        if self.OPENAI_CAPI_PIXEL_API_KEYS.get(pixel_id):
            return f"OPENAI_CAPI_PIXEL_API_KEYS[{pixel_id!r}]"
        return "OPENAI_CAPI_API_KEY"

    def default_pixel_id(self) -> str:
        """Return ``OPENAI_CAPI_PIXEL_ID``; raise :class:`CapiConfigurationError` if unset."""
        pixel_id = self.OPENAI_CAPI_PIXEL_ID
        if not pixel_id:
            raise CapiConfigurationError(
                "No pixel given and OPENAI_CAPI_PIXEL_ID is not set: set it to your "
                + "Pixel ID (Ads Manager → Conversions), or name the pixel for each conversion."
            )
        return pixel_id


conf = Settings()
