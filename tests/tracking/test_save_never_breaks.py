"""A broken conversion never breaks the save, whatever its hooks return or raise.

Hypothesis plays every hook of a model conversion: text with NUL characters and lone
surrogates, text longer than any column, wrong types, NaN and infinities, integers too
long to print, nested junk, objects whose ``str()`` raises, and hooks that raise. On
SQLite and on PostgreSQL, inside ``atomic()`` and in autocommit, two orders saved with
the same hooks commit and each has exactly one event row: pending, or finished with a
reason. The build after the commit then leaves each row built, or finished with a
reason.

``HYPOTHESIS_EXAMPLES`` sets the number of examples (100 each way by default: seconds
on SQLite, well under a minute on PostgreSQL).
"""

from __future__ import annotations

import os
import string
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from datetime import timezone as dt_timezone
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from django_openai_capi import ModelConversion, track
from django_openai_capi.models import ConversionEvent
from django_openai_capi.tracking.building import build_pending
from tests.conftest import Swap
from tests.testapp.models import Note, Order

Status = ConversionEvent.Status

EXAMPLES = settings(
    max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "100")),
    deadline=None,
    # The database is emptied by each example itself (see below), not by the fixture.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


class Hostile:
    """A value that cannot be turned into text, or into a truth value."""

    def __str__(self) -> str:
        raise RuntimeError("str() of a hostile value")

    def __format__(self, spec: str) -> str:
        raise RuntimeError("format() of a hostile value")

    def __bool__(self) -> bool:
        raise RuntimeError("bool() of a hostile value")

    def __repr__(self) -> str:  # for hypothesis's report of a failing example
        return "Hostile()"


class HostileZone(tzinfo):
    """A time zone that cannot say its offset, or its name."""

    def utcoffset(self, dt: datetime | None) -> timedelta:
        raise RuntimeError("utcoffset() of a hostile zone")

    def dst(self, dt: datetime | None) -> timedelta:
        raise RuntimeError("dst() of a hostile zone")

    def tzname(self, dt: datetime | None) -> str:
        raise RuntimeError("tzname() of a hostile zone")

    def __repr__(self) -> str:
        return "HostileZone()"


class NamelessZone(tzinfo):
    """A time zone with an offset but no name: only what is needed is asked of it."""

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    def utcoffset(self, dt: datetime | None) -> timedelta:
        return self.offset

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)

    def tzname(self, dt: datetime | None) -> str:
        raise RuntimeError("tzname() of a nameless zone")

    def __repr__(self) -> str:
        return f"NamelessZone({self.offset!r})"


class HostileError(Exception):
    """An exception whose message cannot be read."""

    def __str__(self) -> str:
        raise RuntimeError("str() of a hostile exception")


class Raises:
    """A hook that raises *error* instead of returning."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __repr__(self) -> str:
        return f"Raises({type(self.error).__name__})"


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


#: The hook is left alone: ModelConversion's default runs.
DEFAULT = _Default()

HOOKS = (
    "should_track",
    "get_pixel_id",
    "get_event_id",
    "get_event_time",
    "get_user",
    "get_data",
    "get_source_url",
    "get_oppref",
    "get_opt_out",
    "get_action_source",
)

#: What each hook does in the current example.
PLAN: dict[str, object] = {}


def _played(name: str) -> Callable[..., object]:
    def hook(self: ModelConversion[Order], obj: Order, *args: object) -> object:
        value = PLAN.get(name, DEFAULT)
        if value is DEFAULT:
            return getattr(ModelConversion, name)(self, obj, *args)
        if isinstance(value, Raises):
            raise value.error
        if name == "get_event_id" and isinstance(value, str) and value.strip():
            # Each order's own id, as a real hook returns: one id for both orders
            # would rightly record one event. Appended, so that an id too long or
            # unstorable stays so, and two of them differ only at the end.
            return f"{value}{obj.pk}"
        return value

    hook.__name__ = name
    return hook


Played: type[ModelConversion[Order]] = type(
    "Played",
    (ModelConversion,),
    {"event_type": "order_created", **{name: _played(name) for name in HOOKS}},
)

# What the hooks return.

#: What PostgreSQL text cannot hold (NUL) and UTF-8 cannot encode (lone surrogates).
unstorable_characters = st.sampled_from(["\x00", "\ud800", "\udfff", "\udc80"])
awkward_characters = unstorable_characters | st.sampled_from(
    [" ", "\t", "\n", "\x07", "\x7f", "\u200b", "é", "💥", "@", "sk-", "\\", "%s", "{}"]
)
awkward_text = st.lists(st.characters() | awkward_characters, max_size=12).map("".join)
long_text = st.builds(
    lambda char, count: char * count,
    awkward_characters | st.just("x"),
    st.integers(min_value=65, max_value=3000),
)
text = awkward_text | long_text
numbers = (
    st.integers()
    | st.integers(min_value=2**63)
    | st.floats()
    | st.decimals()
    | st.just(Decimal("NaN"))
    | st.builds(lambda: 10**5000)  # str() refuses it: over 4,300 digits
)
#: Offsets up to the largest a tzinfo may have: a time near year 1 or 9999 shifted by
#: one can fall outside what a datetime holds.
offsets = st.timedeltas(
    min_value=timedelta(hours=-23, minutes=-59),
    max_value=timedelta(hours=23, minutes=59),
)
zones = (
    st.just(UTC)
    | st.timezones()
    | st.builds(dt_timezone, offsets)
    | st.builds(NamelessZone, offsets)
    | st.builds(HostileZone)
)
#: The edges: the first and the last day a datetime holds, either side of the epoch.
edge_moments = (
    st.datetimes(max_value=datetime(1, 1, 2))
    | st.datetimes(min_value=datetime(9999, 12, 30))
    | st.datetimes(min_value=datetime(1969, 12, 31), max_value=datetime(1970, 1, 2))
)
recent = st.builds(
    lambda offset: timezone.now() + offset,
    st.timedeltas(min_value=timedelta(days=-10), max_value=timedelta(hours=1)),
)


def in_zone(moments: st.SearchStrategy[datetime]) -> st.SearchStrategy[datetime]:
    # Not datetimes(timezones=...): that would ask a hostile zone itself.
    return st.builds(lambda moment, zone: moment.replace(tzinfo=zone), moments, zones)


datetimes = (
    st.datetimes()
    | st.datetimes(timezones=st.timezones())
    | in_zone(
        st.datetimes() | edge_moments | recent.map(lambda now: now.replace(tzinfo=None))
    )
    | recent
)
scalars = (
    st.none()
    | st.booleans()
    | numbers
    | text
    | datetimes
    | st.binary(max_size=8)
    | st.builds(Hostile)
)
junk = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.tuples(children)
        | st.dictionaries(text | st.integers(), children, max_size=3)
    ),
    max_leaves=6,
)
raising = st.builds(
    Raises,
    st.builds(ValueError, text)
    | st.builds(KeyError, text)
    | st.builds(HostileError)
    | st.builds(ZeroDivisionError),
)
identifier = st.text(string.ascii_letters + string.digits + "-_.:", min_size=1)

# Values a working conversion returns, so that examples also record events that are
# built and sendable; up to three hooks per example return junk or raise instead.
PLAUSIBLE: dict[str, st.SearchStrategy[object]] = {
    "should_track": st.just(True) | st.just(1),
    "get_pixel_id": st.sampled_from(["test-pixel", "px-2"]),
    "get_event_id": identifier,
    "get_event_time": st.builds(
        lambda offset: timezone.now() + offset,
        st.timedeltas(min_value=timedelta(days=-6), max_value=timedelta(minutes=5)),
    ),
    "get_user": st.none()
    | st.fixed_dictionaries(
        {},
        optional={
            "email": st.emails(),
            "phone": st.just("+1 650 555 0100"),
            "external_id": identifier,
            "country": st.just("US"),
            "ip_address": st.just("203.0.113.9"),
        },
    ),
    "get_data": st.none()
    | st.fixed_dictionaries(
        {},
        optional={
            "amount": st.integers(min_value=0, max_value=10**9),
            "currency": st.sampled_from(["USD", "JPY", "EUR"]),
        },
    ),
    "get_source_url": st.none() | st.just("https://shop.example.com/checkout"),
    "get_oppref": st.none() | identifier,
    "get_opt_out": st.booleans(),
    "get_action_source": st.none() | st.sampled_from(["web", "offline"]),
}
#: What a broken hook returns besides junk: near misses of the plausible values.
with_an_awkward_character = st.builds(
    lambda before, char, after: before + char + after,
    identifier,
    unstorable_characters | awkward_characters,
    st.just("") | identifier,
)
NEAR_MISSES: dict[str, st.SearchStrategy[object]] = {
    "get_event_id": with_an_awkward_character | long_text,
    "get_pixel_id": with_an_awkward_character | long_text,
    "get_event_time": datetimes,
    "get_user": st.dictionaries(
        st.sampled_from(["email", "phone", "external_id", "first_name", "country"])
        | text,
        junk,
        max_size=3,
    ),
    "get_data": st.fixed_dictionaries(
        {},
        optional={
            "amount": numbers,
            "currency": st.sampled_from(["usd", "XXX"]) | text,
            "contents": junk,
            "plan_id": junk,
        },
    ),
}


@st.composite
def plans(draw: st.DrawFn) -> dict[str, object]:
    """What each hook does: up to three of them broken, the others working."""
    broken = draw(st.sets(st.sampled_from(HOOKS), max_size=3))
    plan = {}
    for name in HOOKS:
        working = st.just(DEFAULT) | PLAUSIBLE[name]
        breaking: st.SearchStrategy[object]
        # A falsy should_track rightly records nothing: it is never junk here.
        if name == "should_track":
            breaking = raising | st.builds(Hostile)
        else:
            breaking = NEAR_MISSES.get(name, junk) | junk | raising
        plan[name] = draw(breaking if name in broken else working)
    return plan


@pytest.fixture
def played(swap_conversion: Swap, settings: Any) -> None:
    settings.OPENAI_CAPI_RAISE_ERRORS = False  # production: record, never raise
    swap_conversion(Order, Played)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("played")
@pytest.mark.parametrize("in_atomic", [True, False], ids=["atomic", "autocommit"])
@EXAMPLES
@given(plan=plans())
def test_whatever_the_hooks_do_each_order_commits_with_exactly_one_event(
    in_atomic: bool, plan: dict[str, object]
) -> None:
    two_orders_commit_with_one_event_each(plan, in_atomic=in_atomic)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("played")
@pytest.mark.parametrize("in_atomic", [True, False], ids=["atomic", "autocommit"])
@EXAMPLES
@given(when=datetimes)
def test_whatever_time_get_event_time_returns_each_order_commits_with_one_event(
    in_atomic: bool, when: datetime
) -> None:
    # The plan above breaks the time in few examples, and the edges in fewer still.
    two_orders_commit_with_one_event_each({"get_event_time": when}, in_atomic=in_atomic)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("played")
@EXAMPLES
@given(when=datetimes)
def test_whatever_time_track_is_given_it_records_one_event(when: datetime) -> None:
    ConversionEvent.objects.all().delete()
    assert track("lead_created", event_id="l-1", event_time=when) is True
    (recorded,) = ConversionEvent.objects.all()  # read back: the time is readable
    event(f"recorded {recorded.status}")
    assert recorded.status != Status.FAILED or recorded.last_error


def two_orders_commit_with_one_event_each(
    plan: dict[str, object], *, in_atomic: bool
) -> None:
    # Examples share the test's database: each starts from an empty one.
    ConversionEvent.objects.all().delete()
    Order.objects.all().delete()
    PLAN.clear()
    PLAN.update(plan)

    if in_atomic:
        with transaction.atomic():
            orders = [Order.objects.create(number=f"A-{n}") for n in (1, 2)]
            # The host's transaction is still usable after the tracked saves.
            Note.objects.create(text="written after the orders")
    else:
        orders = [Order.objects.create(number=f"A-{n}") for n in (1, 2)]

    assert Order.objects.filter(pk__in=[order.pk for order in orders]).count() == 2
    rows = list(ConversionEvent.objects.all())
    assert sorted(row.source_label for row in rows) == sorted(
        f"testapp.Order:{order.pk}" for order in orders
    )
    for recorded in rows:
        event(f"recorded {recorded.status}")  # --hypothesis-show-statistics
        if recorded.status == Status.PENDING:
            assert recorded.payload is None  # built after the commit, below
        else:
            assert recorded.status in {Status.FAILED, Status.EXPIRED}
            assert recorded.last_error

    build_pending()

    for recorded in rows:
        recorded.refresh_from_db()
        event(f"built {recorded.status}")
        if recorded.status == Status.PENDING:
            assert recorded.payload is not None
        else:
            assert recorded.status in {Status.FAILED, Status.EXPIRED}
            assert recorded.last_error
