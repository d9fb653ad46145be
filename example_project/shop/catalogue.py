"""What the demo storefront sells: a fixed list, so that the demo needs no product model."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    #: In US dollars, as the order line's DecimalField holds it.
    unit_price: Decimal

    @property
    def price(self) -> str:
        return f"${self.unit_price}"


PRODUCTS = (
    Product("SKU-TEA", "Green tea", Decimal("12.50")),
    Product("SKU-MUG", "Mug", Decimal("9.00")),
    Product("SKU-POT", "Teapot", Decimal("45.00")),
)

BY_SKU = {product.sku: product for product in PRODUCTS}
