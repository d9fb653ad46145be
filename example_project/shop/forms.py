"""The storefront's one form: who buys which product, and how many."""

from __future__ import annotations

from django import forms

from example_project.shop.catalogue import PRODUCTS


class CheckoutForm(forms.Form):
    email = forms.EmailField(label="Email")
    sku = forms.ChoiceField(
        label="Product",
        choices=[(p.sku, f"{p.name} ({p.price})") for p in PRODUCTS],
    )
    quantity = forms.IntegerField(
        label="Quantity", min_value=1, max_value=99, initial=1
    )
