"""What the demo storefront sells: a fixed list, so that the demo needs no product model."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    #: In US cents, the minor unit the API takes.
    unit_price: int

    @property
    def price(self) -> str:
        return f"${self.unit_price // 100}.{self.unit_price % 100:02d}"


PRODUCTS = (
    Product("SKU-TEA", "Green tea", 1250),
    Product("SKU-MUG", "Mug", 900),
    Product("SKU-POT", "Teapot", 4500),
)

BY_SKU = {product.sku: product for product in PRODUCTS}
