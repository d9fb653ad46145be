"""``openai_capi_backfill`` records the events of objects saved before tracking, once."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any, TypeVar

import pytest
from django.db import connection, models
from django.db.models import QuerySet
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_openai_capi import ModelConversion
from django_openai_capi.health import ExitCode
from django_openai_capi.maintenance import backfill as backfill_module
from django_openai_capi.maintenance.backfill import backfill
from django_openai_capi.models import ConversionEvent, ErrorKind
from django_openai_capi.tracking.registry import registry
from example_project.accounts.models import Registration
from example_project.billing.models import Subscription
from example_project.shop.conversions import OrderConversion
from example_project.shop.models import Order
from tests.commands.conftest import Run, Swap
from tests.outbox import ENDPOINT
from tests.testapp.models import Order as PlainOrder
from tests.testapp.models import Signup

pytestmark = pytest.mark.django_db

Status = ConversionEvent.Status
M = TypeVar("M", bound=models.Model)

SUMMARY = (
    "recorded {}, already there {}, expired {}, skipped (should_track False) {}, "
    + "failed {}"
)


def summary(*counts: int) -> str:
    return SUMMARY.format(*counts)


def saved_before_tracking(model: type[M], **fields: Any) -> M:
    """An object saved while its model had no conversion: it has no event."""
    with registry.override(model, None):
        return model._default_manager.create(**fields)


def order(*, days_old: float = 0, at: datetime | None = None, **fields: Any) -> Order:
    created_at = at or timezone.now() - timedelta(days=days_old)
    fields.setdefault("email", "buyer@example.com")
    return saved_before_tracking(Order, created_at=created_at, **fields)


def since(days: float) -> str:
    return f"--since={(timezone.now() - timedelta(days=days)).isoformat()}"


def event_of(obj: models.Model) -> ConversionEvent:
    return ConversionEvent.objects.get(source_label=f"{obj._meta.label}:{obj.pk}")


class BrokenOn(OrderConversion):
    """The example's conversion, with an event id hook that fails for "BROKEN-" orders."""

    def get_event_id(self, obj: Order) -> str:
        if obj.number.startswith("BROKEN"):
            raise ValueError(f"no event id for {obj.number}")
        return super().get_event_id(obj)


# Recording, once.


def test_a_backfill_records_each_missing_event_once_and_a_second_run_nothing(
    run: Run,
) -> None:
    orders = [order(days_old=days) for days in (3, 2, 1)]

    first = run("openai_capi_backfill", since(5), "--model=shop.Order")

    assert first.stdout == f"shop.Order: {summary(3, 0, 0, 0, 0)}\n"
    assert first.stderr == ""
    events = list(ConversionEvent.objects.order_by("event_time"))
    assert [e.event_id for e in events] == [f"shop.order:{o.pk}" for o in orders]
    assert [e.event_time for e in events] == [o.created_at for o in orders]
    assert {e.status for e in events} == {Status.PENDING}

    second = run("openai_capi_backfill", since(5), "--model=shop.Order")

    assert second.stdout == f"shop.Order: {summary(0, 3, 0, 0, 0)}\n"
    assert list(ConversionEvent.objects.order_by("event_time")) == events


def test_objects_before_since_or_from_until_on_are_left_alone(run: Run) -> None:
    start = timezone.now() - timedelta(days=3)
    end = start + timedelta(days=1)
    second = timedelta(seconds=1)
    _, first, last, _ = (
        order(at=start - second),
        order(at=start),
        order(at=end - second),
        order(at=end),
    )

    out = run(
        "openai_capi_backfill",
        f"--since={start.isoformat()}",
        f"--until={end.isoformat()}",
        "--model=shop.Order",
    )

    assert out.stdout == f"shop.Order: {summary(2, 0, 0, 0, 0)}\n"
    recorded = set(ConversionEvent.objects.values_list("event_id", flat=True))
    assert recorded == {f"shop.order:{first.pk}", f"shop.order:{last.pk}"}


def test_a_date_without_an_offset_is_in_the_current_time_zone(
    run: Run, settings: Any
) -> None:
    settings.TIME_ZONE = "America/New_York"
    yesterday = timezone.localdate() - timedelta(days=1)
    midnight = timezone.make_aware(datetime.combine(yesterday, time()))
    order(at=midnight - timedelta(minutes=1))
    late = order(at=midnight + timedelta(minutes=1))

    run(
        "openai_capi_backfill", f"--since={yesterday.isoformat()}", "--model=shop.Order"
    )
    assert event_of(late).status == Status.PENDING
    assert ConversionEvent.objects.count() == 1

    # The same moment with an offset, read as written.
    out = run(
        "openai_capi_backfill",
        f"--since={midnight.astimezone(UTC).isoformat()}",
        "--model=shop.Order",
    )
    assert out.stdout == f"shop.Order: {summary(0, 1, 0, 0, 0)}\n"


def test_an_object_older_than_7_days_ends_expired_after_a_warning_up_front(
    run: Run,
) -> None:
    old = order(days_old=10)
    recent = order(days_old=1)

    out = run("openai_capi_backfill", since(12), "--model=shop.Order")

    assert out.stderr.startswith("Warning: since ")
    assert (
        "is more than 7 days ago, and the API refuses events older than" in out.stderr
    )
    assert "are recorded as expired and will never be delivered" in out.stderr
    assert out.stdout == f"shop.Order: {summary(1, 0, 1, 0, 0)}\n"
    assert event_of(old).status == Status.EXPIRED
    assert event_of(old).last_error_kind == ErrorKind.EXPIRED
    assert event_of(recent).status == Status.PENDING


def test_an_object_should_track_refuses_is_counted_skipped(run: Run) -> None:
    order(days_old=1, is_paid=False)  # the example records paid orders only

    out = run("openai_capi_backfill", since(2), "--model=shop.Order")

    assert out.stdout == f"shop.Order: {summary(0, 0, 0, 1, 0)}\n"
    assert not ConversionEvent.objects.exists()


def test_an_object_whose_event_was_recorded_by_its_save_is_already_there(
    run: Run,
) -> None:
    tracked = Order.objects.create(email="buyer@example.com")
    untracked = order(days_old=1)

    out = run("openai_capi_backfill", since(2), "--model=shop.Order")

    assert out.stdout == f"shop.Order: {summary(1, 1, 0, 0, 0)}\n"
    assert event_of(tracked).pk < event_of(untracked).pk


# Failures.


def test_a_hook_that_raises_counts_failed_and_the_run_continues(
    run_failing: Run, swap: Swap
) -> None:
    swap(Order, BrokenOn)
    first = order(days_old=3)
    broken = order(days_old=2, number="BROKEN-1")
    last = order(days_old=1)

    out = run_failing("openai_capi_backfill", since(5), "--model=shop.Order")

    assert out.stdout == f"shop.Order: {summary(2, 0, 0, 0, 1)}\n"
    assert out.stderr == (
        f"  shop.Order:{broken.pk}: ValueError: no event id for BROKEN-1\n"
    )
    assert out.error == "1 object(s) failed (details above)."
    assert out.returncode == ExitCode.FAILED
    assert event_of(first).status == event_of(last).status == Status.PENDING
    assert ConversionEvent.objects.count() == 2


def test_a_should_track_that_raises_counts_failed_too(
    run_failing: Run, swap: Swap
) -> None:
    class Undecided(OrderConversion):
        def should_track(self, obj: Order, created: bool) -> bool:
            raise LookupError("payment provider unreachable")

    swap(Order, Undecided)
    undecided = order(days_old=1)

    out = run_failing("openai_capi_backfill", since(2), "--model=shop.Order")

    assert out.stdout == f"shop.Order: {summary(0, 0, 0, 0, 1)}\n"
    assert f"shop.Order:{undecided.pk}: LookupError: payment provider" in out.stderr
    assert not ConversionEvent.objects.exists()


def test_a_hook_whose_query_fails_costs_only_its_own_object(
    run_failing: Run, swap: Swap
) -> None:
    class QueriesAMissingTable(OrderConversion):
        def should_track(self, obj: Order, created: bool) -> bool:
            if obj.number.startswith("BROKEN"):
                with connection.cursor() as cursor:
                    cursor.execute("SELECT 1 FROM no_such_table")
            return True

    swap(Order, QueriesAMissingTable)
    order(days_old=3)
    order(days_old=2, number="BROKEN-1")
    order(days_old=1)

    out = run_failing("openai_capi_backfill", since(5), "--model=shop.Order")

    # On PostgreSQL, without a savepoint per object, the failed query would have
    # aborted the transaction of the whole chunk.
    assert out.stdout == f"shop.Order: {summary(2, 0, 0, 0, 1)}\n"
    assert ConversionEvent.objects.count() == 2


@pytest.mark.usefixtures("record_failures")
def test_with_errors_recorded_a_failing_hook_leaves_a_failed_event_until_fixed(
    run: Run, run_failing: Run, swap: Swap
) -> None:
    swap(Order, BrokenOn)
    broken = order(days_old=2, number="BROKEN-1")
    order(days_old=1)

    out = run_failing("openai_capi_backfill", since(5), "--model=shop.Order")

    assert out.stdout == f"shop.Order: {summary(1, 0, 0, 0, 1)}\n"
    assert out.stderr == (
        f"  BrokenOn could not identify the event of shop.Order:{broken.pk}: "
        + "ValueError: no event id for BROKEN-1\n"
    )
    failed = event_of(broken)
    assert (failed.status, failed.last_error_kind) == (Status.FAILED, ErrorKind.BUILD)

    swap(Order, OrderConversion)  # the hook is fixed
    again = run("openai_capi_backfill", since(5), "--model=shop.Order")

    assert again.stdout == f"shop.Order: {summary(1, 1, 0, 0, 0)}\n"
    fixed = ConversionEvent.objects.get(pk=failed.pk)
    assert (fixed.status, fixed.last_error) == (Status.PENDING, "")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("record_failures")
def test_events_whose_build_fails_on_the_commit_are_counted_failed(
    run_failing: Run,
    swap: Swap,
    settings: Any,
    api: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # With DISPATCH "inline" each chunk's commit builds and sends its events in this
    # process: the build's traceback is printed during the run, so the summary must
    # count that event failed, not recorded.
    settings.OPENAI_CAPI_DISPATCH = "inline"
    settings.OPENAI_CAPI_SEND_ENABLED = True
    api.post(ENDPOINT, json={})

    class NoData(OrderConversion):
        def get_data(self, obj: Order) -> Any:
            if obj.number.startswith("BROKEN"):
                raise ValueError(f"no lines for {obj.number}")
            return super().get_data(obj)

    swap(Order, NoData)
    good = order(days_old=2)
    broken = order(days_old=1, number="BROKEN-1")

    out = run_failing(
        "openai_capi_backfill", since(5), "--model=shop.Order", "--batch-size=1"
    )

    assert "no lines for BROKEN-1" in caplog.text  # the build's traceback
    assert out.stdout == f"shop.Order: {summary(1, 0, 0, 0, 1)}\n"
    assert out.stderr == (
        f"  NoData.get_data(shop.Order:{broken.pk}) raised ValueError: no lines for "
        + "BROKEN-1\n"
    )
    assert out.error == "1 object(s) failed (details above)."
    assert out.returncode == ExitCode.FAILED
    assert event_of(broken).status == Status.FAILED
    assert event_of(good).status == Status.SENT


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("record_failures")
def test_a_rerun_whose_build_fails_again_counts_it_failed_again(
    run_failing: Run,
    swap: Swap,
    settings: Any,
    api: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The second run replaces the failed row in place (it keeps its old id), and the
    # commit's build fails it again: the summary must say so, as the first run's did.
    settings.OPENAI_CAPI_DISPATCH = "inline"
    settings.OPENAI_CAPI_SEND_ENABLED = True
    api.post(ENDPOINT, json={})

    class NoData(OrderConversion):
        def get_data(self, obj: Order) -> Any:
            raise ValueError(f"no lines for {obj.number}")

    swap(Order, NoData)
    broken = order(days_old=1, number="BROKEN-1")
    first = run_failing("openai_capi_backfill", since(5), "--model=shop.Order")
    order(days_old=2)  # newer rows, so the failed one's id is below the next floor
    caplog.clear()

    again = run_failing("openai_capi_backfill", since(5), "--model=shop.Order")

    assert first.stdout == f"shop.Order: {summary(0, 0, 0, 0, 1)}\n"
    assert "no lines for BROKEN-1" in caplog.text  # the build's traceback, again
    assert again.stdout == f"shop.Order: {summary(0, 0, 0, 0, 2)}\n"
    assert again.returncode == ExitCode.FAILED
    assert event_of(broken).status == Status.FAILED


@pytest.mark.usefixtures("record_failures")
def test_a_dry_run_counts_before_its_rollback(run: Run, settings: Any) -> None:
    settings.OPENAI_CAPI_DISPATCH = "inline"
    order(days_old=1)

    out = run("openai_capi_backfill", since(5), "--model=shop.Order", "--dry-run")

    assert out.stdout.splitlines()[1] == f"shop.Order: {summary(1, 0, 0, 0, 0)}"
    assert not ConversionEvent.objects.exists()


def test_only_the_first_few_errors_are_printed(run_failing: Run, swap: Swap) -> None:
    swap(Order, BrokenOn)
    for n in range(7):
        order(days_old=1, number=f"BROKEN-{n}")

    out = run_failing("openai_capi_backfill", since(2), "--model=shop.Order")

    lines = out.stderr.splitlines()
    assert len(lines) == 6
    assert all("ValueError: no event id for BROKEN-" in line for line in lines[:5])
    assert lines[5] == "  ... and 2 more"
    assert out.error == "7 object(s) failed (details above)."


def test_a_conversion_without_date_field_is_reported_and_the_others_still_run(
    run_failing: Run,
) -> None:
    recent = order(days_old=1)

    out = run_failing("openai_capi_backfill", since(2))  # every registered model

    assert out.stdout == (
        f"accounts.Registration: {summary(0, 0, 0, 0, 0)}\n"
        + f"billing.Subscription: {summary(0, 0, 0, 0, 0)}\n"
        + f"shop.Order: {summary(1, 0, 0, 0, 0)}\n"
        + f"testapp.Order: {summary(0, 0, 0, 0, 0)}\n"
        + f"testapp.Signup: {summary(0, 0, 0, 0, 0)}\n"
    )
    assert (
        "testapp.Order: stopped: CapiConfigurationError: OrderConversion has no "
        + "date_field, so the backfill cannot tell which testapp.Order objects fall "
        + "in its dates: set date_field to the field holding when the conversion "
        + 'happened (e.g. date_field = "created_at"), or override '
        + "get_backfill_queryset()."
    ) in out.stderr
    assert "testapp.Signup: stopped: CapiConfigurationError: SignupConversion" in (
        out.stderr
    )
    assert (
        out.error == "could not backfill testapp.Order, testapp.Signup (details above)."
    )
    assert event_of(recent).status == Status.PENDING


def test_a_misspelt_date_field_is_reported_for_its_model(
    run_failing: Run, swap: Swap
) -> None:
    class Misspelt(OrderConversion):
        date_field = "placed_at"

    swap(Order, Misspelt)
    out = run_failing("openai_capi_backfill", since(2), "--model=shop.Order")

    assert "shop.Order: stopped: FieldError: Cannot resolve keyword 'placed_at'" in (
        out.stderr
    )
    assert out.error == "could not backfill shop.Order (details above)."
    assert out.returncode == ExitCode.ERROR


def test_without_model_every_registered_model_is_backfilled(run: Run) -> None:
    order(days_old=1)
    saved_before_tracking(
        Registration,
        email="new@example.com",
        username="new",
        created_at=timezone.now() - timedelta(hours=1),
    )

    with registry.override(PlainOrder, None), registry.override(Signup, None):
        out = run("openai_capi_backfill", since(2))

    assert out.stdout == (
        f"accounts.Registration: {summary(1, 0, 0, 0, 0)}\n"
        + f"billing.Subscription: {summary(0, 0, 0, 0, 0)}\n"
        + f"shop.Order: {summary(1, 0, 0, 0, 0)}\n"
    )


def test_an_overridden_get_backfill_queryset_needs_no_date_field(
    run: Run, swap: Swap
) -> None:
    class EveryPaidOrder(ModelConversion[PlainOrder]):
        event_type = "order_created"

        def get_backfill_queryset(
            self, since: datetime, until: datetime | None
        ) -> QuerySet[PlainOrder]:
            return self.get_queryset().filter(is_paid=True)

    swap(PlainOrder, EveryPaidOrder)
    paid = saved_before_tracking(PlainOrder, number="A-1")
    saved_before_tracking(PlainOrder, number="A-2", is_paid=False)

    out = run("openai_capi_backfill", since(2), "--model=testapp.Order")

    assert out.stdout == f"testapp.Order: {summary(1, 0, 0, 0, 0)}\n"
    # The default get_event_time is the time of the save: said before it happens.
    assert out.stderr == (
        "Warning: EveryPaidOrder has no date_field and keeps the default "
        + "get_event_time(), the time of the save: its backfilled events will say the "
        + "testapp.Order conversions happened now. Set date_field, or override "
        + "get_event_time() to return the object's own date.\n"
    )
    assert event_of(paid).event_time > timezone.now() - timedelta(minutes=1)


# Dry run and batches.


def test_a_dry_run_writes_nothing_and_counts_what_a_run_would_do(run: Run) -> None:
    Order.objects.create(email="buyer@example.com")  # tracked: its event exists
    order(days_old=1)
    order(days_old=10)
    order(days_old=1, is_paid=False)
    before = list(ConversionEvent.objects.values())

    out = run("openai_capi_backfill", since(12), "--model=shop.Order", "--dry-run")

    assert out.stdout == (
        "Dry run, nothing was written. What a run would do:\n"
        + f"shop.Order: {summary(1, 1, 1, 1, 0)}\n"
    )
    assert list(ConversionEvent.objects.values()) == before


def test_objects_are_read_a_batch_at_a_time_in_primary_key_order(run: Run) -> None:
    orders = [order(days_old=1) for _ in range(4)]

    with CaptureQueriesContext(connection) as captured:
        out = run(
            "openai_capi_backfill", since(2), "--model=shop.Order", "--batch-size=2"
        )

    assert out.stdout == f"shop.Order: {summary(4, 0, 0, 0, 0)}\n"
    pages = [
        query["sql"]
        for query in captured.captured_queries
        if query["sql"].startswith('SELECT "shop_order"')
    ]
    assert len(pages) == 3  # 2, 2, and an empty one that ends the walk
    assert all("LIMIT 2" in page and "ORDER BY" in page for page in pages)
    recorded = ConversionEvent.objects.order_by("id").values_list("event_id", flat=True)
    assert list(recorded) == [f"shop.order:{o.pk}" for o in orders]


def test_outcomes_are_read_back_in_slices(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backfill_module, "_READBACK_SLICE", 2)
    for _ in range(5):
        order(days_old=10)

    out = run("openai_capi_backfill", since(12), "--model=shop.Order")

    assert out.stdout == f"shop.Order: {summary(0, 0, 5, 0, 0)}\n"


class OutboxElsewhere:
    """A router that keeps the outbox out of the database the host writes to."""

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        return False if app_label == "django_openai_capi" else None

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return "default"


def test_with_the_outbox_routed_elsewhere_events_are_written_after_each_commit(
    run: Run, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.DATABASE_ROUTERS = [f"{__name__}.OutboxElsewhere"]
    order(days_old=1)
    order(days_old=1)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        out = run("openai_capi_backfill", since(2), "--model=shop.Order")

    assert out.stdout == f"shop.Order: {summary(2, 0, 0, 0, 0)}\n"
    assert len(callbacks) == 2
    assert ConversionEvent.objects.count() == 2


# Options.


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "Error: the following arguments are required: --since"),
        (
            ["--since=yesterday"],
            "--since yesterday is not an ISO date or date-time: give it as "
            + "2024-05-01, 2024-05-01T13:00 or 2024-05-01T13:00+02:00.",
        ),
        (
            ["--since=2024-05-01", "--until=2024-02-30"],
            "--until 2024-02-30 is not an ISO date or date-time",
        ),
        (
            ["--since=2024-05-01", "--until=2024-04-01"],
            "--until 2024-04-01 must be after --since 2024-05-01.",
        ),
        (
            ["--since=2024-05-01", "--until=2024-05-01"],
            "--until 2024-05-01 must be after --since 2024-05-01.",
        ),
        (
            ["--since=2024-05-01", "--batch-size=0"],
            "--batch-size must be at least 1, got 0.",
        ),
        (
            ["--since=2024-05-01", "--batch-size=lots"],
            "argument --batch-size: invalid int value: 'lots'",
        ),
        (
            ["--since=2024-05-01", "--model=shop.Ordr"],
            "--model shop.Ordr: no model 'shop.Ordr' is installed "
            + "(give it as app_label.ModelName).",
        ),
        (
            ["--since=2024-05-01", "--model=Order"],
            "--model Order: no model 'Order' is installed",
        ),
        (
            ["--since=2024-05-01", "--model=shop.Order", "--model=testapp.Note"],
            "--model testapp.Note: testapp.Note has no registered conversion "
            + "(registered: accounts.Registration, billing.Subscription, shop.Order, "
            + "testapp.Order, testapp.Signup).",
        ),
    ],
)
def test_bad_option_values_are_refused_by_name_before_anything_is_written(
    run_failing: Run, args: list[str], message: str
) -> None:
    order(days_old=1)
    out = run_failing("openai_capi_backfill", *args)
    assert message in out.error
    assert out.stdout == ""
    assert not ConversionEvent.objects.exists()


def test_with_nothing_registered_the_error_says_so(run_failing: Run) -> None:
    with (
        registry.override(Order, None),
        registry.override(PlainOrder, None),
        registry.override(Signup, None),
        registry.override(Registration, None),
        registry.override(Subscription, None),
    ):
        out = run_failing(
            "openai_capi_backfill", "--since=2024-05-01", "--model=shop.Order"
        )
    assert out.error.endswith(
        "shop.Order has no registered conversion (registered: none)."
    )


def test_with_nothing_registered_there_is_nothing_to_do(run: Run) -> None:
    with (
        registry.override(Order, None),
        registry.override(PlainOrder, None),
        registry.override(Signup, None),
        registry.override(Registration, None),
        registry.override(Subscription, None),
    ):
        out = run("openai_capi_backfill", "--since=2024-05-01")
    assert out.stdout == "Nothing to backfill: no model has a registered conversion.\n"


def test_a_model_named_twice_is_walked_once(run: Run) -> None:
    order(days_old=1)
    out = run(
        "openai_capi_backfill", since(2), "--model=shop.Order", "--model=shop.order"
    )
    assert out.stdout == f"shop.Order: {summary(1, 0, 0, 0, 0)}\n"


# The library function.


def test_backfill_refuses_naive_dates_an_empty_period_and_empty_batches() -> None:
    now = timezone.now()
    with pytest.raises(ValueError, match="timezone-aware"):
        backfill(since=datetime(2024, 5, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        backfill(since=now, until=datetime(2024, 5, 1))
    with pytest.raises(ValueError, match=r"until \(.*\) must be after since"):
        backfill(since=now, until=now)
    with pytest.raises(ValueError, match="batch_size must be at least 1, got 0"):
        backfill(since=now, batch_size=0)


def test_backfill_reports_per_model() -> None:
    order(days_old=1)
    since = timezone.now() - timedelta(days=2)

    report = backfill(since=since, models=[Order], dry_run=True)

    assert (report.since, report.until, report.dry_run, report.ok) == (
        since,
        None,
        True,
        True,
    )
    [result] = report.models
    assert (result.label, result.recorded, result.problem) == ("shop.Order", 1, None)
    assert not ConversionEvent.objects.exists()
