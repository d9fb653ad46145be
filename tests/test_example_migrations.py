"""The example project's 0002 migrations: a demo database made when prices were integers
in minor units keeps its orders' worth after ``git pull`` and ``migrate``, and back."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("shop", "0001_initial"), ("billing", "0001_initial")]
AFTER = [
    ("shop", "0002_prices_in_major_units"),
    ("billing", "0002_prices_in_major_units"),
]


def migrate(targets: list[tuple[str, str]]) -> Any:
    """Migrate to *targets* and return the apps (historical models) of that state."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


@pytest.fixture
def old_schema() -> Iterator[Any]:
    apps = migrate(BEFORE)
    try:
        yield apps
    finally:
        # Whatever the test did, the rest of the session gets the current schema, and
        # no row that a migration would refuse is left in its way.
        with connection.cursor() as cursor:
            for table in ("shop_orderline", "shop_order", "billing_subscription"):
                cursor.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed names
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


def add_rows(apps: Any, rows: list[tuple[str, Any]]) -> tuple[list[int], list[int]]:
    Order = apps.get_model("shop", "Order")
    OrderLine = apps.get_model("shop", "OrderLine")
    Subscription = apps.get_model("billing", "Subscription")
    lines, subscriptions = [], []
    for index, (currency, price) in enumerate(rows):
        order = Order.objects.create(
            number=f"OLD-{index}", email="user@example.com", currency=currency
        )
        lines.append(
            OrderLine.objects.create(
                order=order, sku="sku", name="Tea", quantity=2, unit_price=price
            ).pk
        )
        subscriptions.append(
            Subscription.objects.create(
                email="user@example.com", plan_id="pro", price=price, currency=currency
            ).pk
        )
    return lines, subscriptions


def prices(apps: Any, lines: list[int], subscriptions: list[int]) -> list[Any]:
    OrderLine = apps.get_model("shop", "OrderLine")
    Subscription = apps.get_model("billing", "Subscription")
    return [OrderLine.objects.get(pk=pk).unit_price for pk in lines] + [
        Subscription.objects.get(pk=pk).price for pk in subscriptions
    ]


def test_minor_units_become_major_units_by_the_currency_exponent_and_back(
    old_schema: Any,
) -> None:
    lines, subscriptions = add_rows(
        old_schema, [("USD", 1250), ("JPY", 8900), ("GBP", 5), ("EUR", 0)]
    )

    new = migrate(AFTER)

    assert prices(new, lines, subscriptions) == 2 * [
        Decimal("12.50"),
        Decimal("8900.00"),
        Decimal("0.05"),
        Decimal("0.00"),
    ]
    old = migrate(BEFORE)
    after_round_trip = prices(old, lines, subscriptions)
    assert after_round_trip == 2 * [1250, 8900, 5, 0]
    assert {type(price) for price in after_round_trip} == {int}


def test_a_migrated_order_is_sent_with_the_amount_it_had(old_schema: Any) -> None:
    from django_openai_capi.api import build_event
    from example_project.shop.conversions import OrderConversion
    from example_project.shop.models import Order

    add_rows(old_schema, [("USD", 1250)])
    migrate(AFTER)

    order = Order.objects.get()
    data = OrderConversion(Order).get_data(order)
    event = build_event("order_created", event_id="order-1", data=data)
    # Two teas at 1250 cents before the migration: 2500 cents after it too.
    assert (data["amount"], event["data"]["amount"]) == (Decimal("25.00"), 2500)
    assert event["data"]["contents"][0]["amount"] == 1250


@pytest.mark.parametrize(
    ("model", "label"),
    [("shop.OrderLine", "Order line"), ("billing.Subscription", "Subscription")],
)
def test_migrating_back_refuses_a_price_finer_than_its_currency(
    old_schema: Any, model: str, label: str
) -> None:
    lines, subscriptions = add_rows(old_schema, [("JPY", 8900)])
    new = migrate(AFTER)
    field = "unit_price" if model == "shop.OrderLine" else "price"
    pk = (lines if model == "shop.OrderLine" else subscriptions)[0]
    new.get_model(model).objects.filter(pk=pk).update(**{field: Decimal("8900.50")})

    with pytest.raises(
        ValueError,
        match=rf"^{label} {pk}: {field} 8900.50 JPY has more decimal places than JPY has",
    ):
        migrate(BEFORE)


@pytest.mark.parametrize(
    ("model", "label"),
    [("shop.Order", "Order line"), ("billing.Subscription", "Subscription")],
)
def test_a_row_in_an_unknown_currency_is_named_not_guessed(
    old_schema: Any, model: str, label: str
) -> None:
    add_rows(old_schema, [("USD", 1250)])
    old_schema.get_model(model).objects.update(currency="XXX")

    with pytest.raises(
        ValueError, match=rf"^{label} \d+: .*'XXX' is not an ISO 4217 code"
    ):
        migrate(AFTER)
