from __future__ import annotations

from typing import Any

import pytest
from django.db import models

from django_openai_capi import ModelConversion, register
from django_openai_capi.exceptions import CapiConfigurationError
from django_openai_capi.tracking.registry import ConversionRegistry, registry
from tests.testapp.conversions import OrderConversion, SignupConversion
from tests.testapp.models import Note, Order, RushOrder, Signup


class LeadConversion(ModelConversion[Any]):
    event_type = "lead_created"


def test_conversions_modules_of_installed_apps_are_discovered_at_start_up() -> None:
    assert isinstance(registry.get(Order), OrderConversion)
    assert isinstance(registry.get(Signup), SignupConversion)
    assert registry.get(Note) is None


def test_a_proxy_model_resolves_to_the_conversion_of_its_concrete_model() -> None:
    assert registry.get(RushOrder) is registry.get(Order)


def test_a_conversion_is_found_by_the_model_label_of_its_source() -> None:
    assert registry.get_by_label("testapp.Order") is registry.get(Order)
    assert registry.get_by_label("testapp.Note") is None
    assert registry.get_by_label("nosuchapp.Model") is None
    assert registry.get_by_label("not a label") is None


def test_register_works_as_a_decorator_and_as_a_call() -> None:
    local = ConversionRegistry()
    conversion = local.register(Note, LeadConversion)
    assert local.get(Note) is conversion
    assert conversion.model is Note
    assert len(local) == 1
    assert list(local) == [conversion]
    local.unregister(Note)
    assert local.get(Note) is None


def test_restore_undoes_what_was_registered_and_unregistered_since_a_snapshot() -> None:
    local = ConversionRegistry()
    order = local.register(Order, OrderConversion)
    snapshot = local.snapshot()
    assert dict(snapshot) == {Order: order}
    assert local.get(RushOrder) is order  # resolved through its concrete model

    local.unregister(Order)
    local.register(Note, LeadConversion)
    assert local.get(RushOrder) is None
    assert dict(snapshot) == {Order: order}  # a copy, not a view

    local.restore(snapshot)
    assert local.get(Order) is order
    assert local.get(RushOrder) is order  # what was resolved meanwhile is forgotten
    assert local.get(Note) is None


def test_the_module_level_register_returns_the_class_unchanged() -> None:
    try:
        assert register(Note, LeadConversion) is LeadConversion

        @register(Note)  # a second registration of the same model
        class Again(ModelConversion[Note]):
            event_type = "lead_created"

    except CapiConfigurationError as exc:
        assert "testapp.Note is registered twice" in str(exc)
        assert "LeadConversion" in str(exc) and "Again" in str(exc)
    else:  # pragma: no cover
        pytest.fail("a second registration of one model must fail")
    finally:
        registry.unregister(Note)


def _register(model: object, **attributes: object) -> None:
    cls = type("Broken", (ModelConversion,), attributes)
    ConversionRegistry().register(model, cls)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({}, "has no event_type: set it to one of app_installed"),
        ({"event_type": "purchase"}, "type: must be one of"),
        (
            {"event_type": "custom"},
            "custom_event_name: is required when type is 'custom'",
        ),
        (
            {"event_type": "custom", "custom_event_name": "demo booked"},
            "custom_event_name: must be 1-64 letters",
        ),
        (
            {"event_type": "custom", "custom_event_name": "order_created"},
            "must not be a standard event name",
        ),
        (
            {"event_type": "lead_created", "custom_event_name": "demo_booked"},
            "is allowed only with type 'custom'",
        ),
        (
            {"event_type": "lead_created", "pixel_id": ""},
            "pixel_id should be a Pixel ID string",
        ),
        (
            {"event_type": "lead_created", "pixel_id": 42},
            "pixel_id should be a Pixel ID string",
        ),
    ],
)
def test_a_conversion_that_cannot_make_valid_events_fails_at_registration(
    attributes: dict[str, object], message: str
) -> None:
    with pytest.raises(CapiConfigurationError, match="Broken") as caught:
        _register(Note, **attributes)
    assert message in str(caught.value)


def test_a_custom_conversion_with_a_valid_name_registers() -> None:
    _register(
        Note, event_type="custom", custom_event_name="demo_booked", pixel_id="px-2"
    )


class AbstractThing(models.Model):
    class Meta:
        abstract = True
        app_label = "testapp"


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (AbstractThing, "testapp.AbstractThing is abstract"),
        (RushOrder, "testapp.RushOrder is a proxy: register testapp.Order"),
        ("testapp.Order", "register() takes a model class first"),
        (LeadConversion, "register() takes a model class first"),
    ],
)
def test_a_model_whose_saves_cannot_be_tracked_is_refused(
    model: object, message: str
) -> None:
    with pytest.raises(CapiConfigurationError) as caught:
        ConversionRegistry().register(model, LeadConversion)  # type: ignore[arg-type]
    assert message in str(caught.value)


def test_a_swapped_model_is_refused(settings: Any) -> None:
    from django.contrib.auth.models import User

    settings.AUTH_USER_MODEL = "testapp.Note"
    with pytest.raises(
        CapiConfigurationError, match="auth.User is swapped for testapp.Note"
    ):
        ConversionRegistry().register(User, LeadConversion)


def test_only_modelconversion_subclasses_register() -> None:
    with pytest.raises(
        CapiConfigurationError, match="needs a ModelConversion subclass"
    ):
        ConversionRegistry().register(Note, object)  # type: ignore[arg-type]


class Pairing(models.Model):
    pk = models.CompositePrimaryKey("left", "right")
    left = models.IntegerField()
    right = models.IntegerField()

    class Meta:
        app_label = "testapp"
        managed = False

    def __str__(self) -> str:
        return f"{self.left}-{self.right}"


def test_a_model_with_a_composite_primary_key_is_refused() -> None:
    with pytest.raises(CapiConfigurationError, match="has a composite primary key"):
        ConversionRegistry().register(Pairing, LeadConversion)


def test_a_wrong_first_argument_is_named_with_what_was_passed() -> None:
    with pytest.raises(
        CapiConfigurationError, match=r"got 'shop.Order' \(for <object object"
    ):
        ConversionRegistry().register("shop.Order", object())  # type: ignore[arg-type]


def test_the_package_exposes_only_its_public_names() -> None:
    import django_openai_capi

    assert django_openai_capi.track.__name__ == "track"
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        django_openai_capi.nothing  # noqa: B018
