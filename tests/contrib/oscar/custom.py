"""A shop's own order conversion: a subclass named by OPENAI_CAPI_OSCAR_CONVERSION."""

from __future__ import annotations

from typing import Any

from django_openai_capi.contrib.oscar.conversions import OrderConversion


class SkuOrderConversion(OrderConversion):
    """Names every item by its partner SKU, as this shop's catalogue feed does."""

    def get_content_id(self, line: Any) -> str | None:
        sku: str = line.partner_sku
        return sku


NOT_A_CONVERSION = object()
