"""A project's conversion module with a bug: importing it raises, as a typo would."""

from __future__ import annotations

from django_openai_capi.contrib.oscar.conversions import OrderConversion


class ShopOrderConversion(OrderConversion):
    pass


raise RuntimeError("a bug in the project's module")
