"""A storefront as small as a real checkout gets: a page, a form, a confirmation.

Nothing here mentions conversions. The order saved by ``checkout`` is recorded by the
app's ``post_save`` receiver (``conversions.py`` registers it), and the middleware
gives that event the visitor's ``oppref``, IP and user agent; the confirmation page
reports the same event from the browser with ``{% openai_capi_event order %}``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from example_project.shop.catalogue import BY_SKU, PRODUCTS
from example_project.shop.forms import CheckoutForm
from example_project.shop.models import Order, OrderLine

#: The session key of the buyer's last order: the confirmation page shows only that one.
LAST_ORDER = "shop_last_order"


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "shop/home.html",
        {
            "endpoint": settings.OPENAI_CAPI_ENDPOINT,
            "pixel_id": settings.OPENAI_CAPI_PIXEL_ID,
        },
    )


@require_http_methods(["GET", "POST"])
def checkout(request: HttpRequest) -> HttpResponse:
    form = CheckoutForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        product = BY_SKU[form.cleaned_data["sku"]]
        # The order first, its line after it, in one transaction: the order's event is
        # recorded with the order, and built after the commit, with the line.
        with transaction.atomic():
            order = Order.objects.create(email=form.cleaned_data["email"])
            OrderLine.objects.create(
                order=order,
                sku=product.sku,
                name=product.name,
                quantity=form.cleaned_data["quantity"],
                unit_price=product.unit_price,
            )
        request.session[LAST_ORDER] = order.pk
        return redirect("shop:confirmation")
    return render(request, "shop/checkout.html", {"form": form, "products": PRODUCTS})


@require_GET
def confirmation(request: HttpRequest) -> HttpResponse:
    pk = request.session.get(LAST_ORDER)
    order = (
        Order.objects.prefetch_related("lines").filter(pk=pk).first()
        if isinstance(pk, int)
        else None
    )
    if order is None:
        return redirect("shop:checkout")
    return render(request, "shop/confirmation.html", {"order": order})
