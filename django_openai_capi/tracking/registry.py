"""Which models are conversions: ``register``, the registry, and autodiscovery.

A registration that cannot work (an unknown event type, ``custom`` without its name, a
model registered twice, a model whose saves cannot be told apart) fails at start-up
with a :class:`CapiConfigurationError` naming the class and what to change, rather than
at the first order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any, TypeVar, overload

from django.apps import apps
from django.db import models
from django.utils.module_loading import autodiscover_modules

from django_openai_capi.api import spec
from django_openai_capi.api.identifiers import PIXEL_ID_MAX_LENGTH, pixel_id_problem
from django_openai_capi.api.issues import IssueCollector
from django_openai_capi.api.validation import check_event
from django_openai_capi.exceptions import CapiConfigurationError
from django_openai_capi.redaction import redact
from django_openai_capi.tracking.conversion import ModelConversion, plain_event_type

C = TypeVar("C", bound=type[ModelConversion[Any]])

#: The module each installed app may have to register its conversions in.
MODULE_NAME = "conversions"


class ConversionRegistry:
    """Registered conversions, one per concrete model."""

    def __init__(self) -> None:
        self._conversions: dict[type[models.Model], ModelConversion[Any]] = {}
        # Every save of every model asks get(): the answer per sender class, None
        # included, is kept until the registrations change.
        self._resolved: dict[type[models.Model], ModelConversion[Any] | None] = {}

    def register(
        self, model: type[models.Model], conversion_class: type[ModelConversion[Any]]
    ) -> ModelConversion[Any]:
        _check_model(model, conversion_class)
        _check_conversion_class(conversion_class)
        existing = self._conversions.get(model)
        if existing is not None:
            raise CapiConfigurationError(
                f"{model._meta.label} is registered twice: by {_name(type(existing))} "
                + f"and by {_name(conversion_class)}. One model has one conversion; "
                + "decide between the events in one class's should_track."
            )
        conversion = conversion_class(model)
        self._conversions[model] = conversion
        self._resolved.clear()
        return conversion

    def unregister(self, model: type[models.Model]) -> None:
        """Forget *model*'s conversion (for tests); a ``KeyError`` if it has none."""
        del self._conversions[model]
        self._resolved.clear()

    def snapshot(self) -> Mapping[type[models.Model], ModelConversion[Any]]:
        """The registrations as they stand, for :meth:`restore` (tests, doc snippets)."""
        return MappingProxyType(dict(self._conversions))

    def restore(
        self, snapshot: Mapping[type[models.Model], ModelConversion[Any]]
    ) -> None:
        """Make the registrations those of *snapshot*, whatever was (un)registered since.

        For code that registers conversions for a while: a test, a documentation
        page's snippets (tests/docs).
        """
        self._conversions = dict(snapshot)
        self._resolved.clear()

    def get(self, model: type[models.Model]) -> ModelConversion[Any] | None:
        """The conversion a save of *model* goes through.

        *model*'s own, else that of the concrete model a proxy stands for, else that
        of the nearest registered parent of a multi-table child: Django signals a
        ``Restaurant(Place)`` save with ``Restaurant`` alone, and it is a ``Place`` too.
        """
        try:
            return self._resolved[model]
        except KeyError:
            pass
        conversion = None
        for candidate in [model, *model._meta.all_parents]:
            conversion = self._conversions.get(candidate)
            if conversion is not None:
                break
        self._resolved[model] = conversion
        return conversion

    @contextmanager
    def override(
        self,
        model: type[models.Model],
        conversion_class: type[ModelConversion[Any]] | None,
    ) -> Iterator[ModelConversion[Any] | None]:
        """Give *model* another conversion (or none) inside a ``with`` block; for tests."""
        previous = self._conversions.pop(model, None)
        self._resolved.clear()
        try:
            yield (
                None
                if conversion_class is None
                else self.register(model, conversion_class)
            )
        finally:
            self._conversions.pop(model, None)
            if previous is not None:
                self._conversions[model] = previous
            self._resolved.clear()

    def get_by_label(self, label: str) -> ModelConversion[Any] | None:
        """The conversion of the model named ``"app_label.ModelName"``, if any."""
        try:
            model = apps.get_model(label)
        except (LookupError, ValueError):
            return None
        return self.get(model)

    def __iter__(self) -> Iterator[ModelConversion[Any]]:
        return iter(list(self._conversions.values()))

    def __len__(self) -> int:
        return len(self._conversions)


registry = ConversionRegistry()


@overload
def register(model: type[models.Model]) -> Callable[[C], C]: ...
@overload
def register(model: type[models.Model], conversion_class: C) -> C: ...
def register(
    model: type[models.Model], conversion_class: C | None = None
) -> C | Callable[[C], C]:
    """Register *conversion_class* for *model*; usable as a class decorator.

    ``@register(Order)`` above ``class OrderConversion(ModelConversion[Order])``, or
    ``register(Order, OrderConversion)``. From then on every save of an ``Order``
    (through a proxy too) goes through the conversion's hooks.
    """

    def decorate(cls: C) -> C:
        registry.register(model, cls)
        return cls

    if conversion_class is None:
        return decorate
    return decorate(conversion_class)


def autodiscover() -> None:
    """Import ``conversions`` from every installed app, as the admin does ``admin``."""
    autodiscover_modules(MODULE_NAME)


def _check_model(model: object, conversion_class: object) -> None:
    if not (isinstance(model, type) and issubclass(model, models.Model)):
        raise CapiConfigurationError(
            f"register() takes a model class first, got {model!r} "
            + f"(for {_name(conversion_class)})."
        )
    opts = model._meta
    problem = None
    if opts.abstract:
        problem = "is abstract: register each concrete model that inherits from it"
    elif opts.proxy:
        problem = (
            f"is a proxy: register {opts.concrete_model._meta.label} (saves through "  # type: ignore[union-attr]
            + "its proxies are tracked too) and tell them apart in should_track"
        )
    elif opts.swapped:
        problem = f"is swapped for {opts.swapped}: register that model"
    elif opts.is_composite_pk:
        problem = (
            "has a composite primary key, which a source label cannot name: "
            + "give it a single-column key"
        )
    if problem:
        raise CapiConfigurationError(
            f"Cannot register {_name(conversion_class)}: {opts.label} {problem}."
        )


def _check_conversion_class(conversion_class: object) -> None:
    if not (
        isinstance(conversion_class, type)
        and issubclass(conversion_class, ModelConversion)
    ):
        raise CapiConfigurationError(
            f"register() needs a ModelConversion subclass, got {conversion_class!r}."
        )
    name = _name(conversion_class)
    event_type = getattr(conversion_class, "event_type", None)
    if event_type is None:
        raise CapiConfigurationError(
            f"{name} has no event_type: set it to one of "
            + ", ".join(sorted(spec.EVENT_TYPES))
            + "."
        )
    # The same rules as a sent event, so that registration and delivery cannot
    # disagree about what a valid type and custom name are.
    probe: dict[str, object] = {"type": event_type}
    if conversion_class.custom_event_name is not None:
        probe["custom_event_name"] = conversion_class.custom_event_name
    issues = IssueCollector()
    check_event(probe, "", issues)
    problems = [
        str(issue)
        for issue in issues.issues
        if issue.path in {"type", "custom_event_name"}
    ]
    if problems:
        raise CapiConfigurationError(
            f"{name} cannot make valid events: " + "; ".join(problems)
        )
    # Set after the class was made (its own __init_subclass__ made it plain otherwise).
    plain_event_type(conversion_class)
    pixel_id: object = conversion_class.pixel_id
    problem = None if pixel_id is None else pixel_id_problem(pixel_id, redact=redact)
    if problem is not None:
        # The rules of OPENAI_CAPI_PIXEL_ID (check E003), which this attribute replaces.
        raise CapiConfigurationError(
            f"{name}.pixel_id should be a Pixel ID string (no whitespace, at most "
            + f"{PIXEL_ID_MAX_LENGTH} characters), or None for OPENAI_CAPI_PIXEL_ID; "
            + f"it {problem}."
        )


def _name(cls: object) -> str:
    if isinstance(cls, type):
        return f"{cls.__module__}.{cls.__qualname__}"
    return repr(cls)
