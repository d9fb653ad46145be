"""Orders are placed in the admin: the order is saved first, then its lines (the
inline), in one transaction, which is the order of saves the conversion is built for."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from example_project.shop.models import Order, OrderLine

# The admin's classes are generic only to the type checker (django-stubs); at run time
# they cannot be subscripted.
if TYPE_CHECKING:
    _LineInline = admin.TabularInline[OrderLine, Order]
    _OrderAdmin = admin.ModelAdmin[Order]
else:
    _LineInline = admin.TabularInline
    _OrderAdmin = admin.ModelAdmin


class OrderLineInline(_LineInline):
    model = OrderLine
    extra = 1
    min_num = 1


@admin.register(Order)
class OrderAdmin(_OrderAdmin):
    inlines = [OrderLineInline]
    list_display = ["number", "email", "total", "currency", "is_paid", "created_at"]
    list_filter = ["is_paid", "currency"]
    search_fields = ["number", "email", "customer_external_id"]
    readonly_fields = ["created_at"]
    fieldsets = [
        (None, {"fields": ["number", "is_paid", "currency", "created_at"]}),
        ("Customer", {"fields": ["email", "phone", "customer_external_id"]}),
        ("Placed from", {"fields": ["country", "city", "postal_code"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Order]:
        # The list shows each order's total: one query for all the lines on a page.
        return super().get_queryset(request).prefetch_related("lines")

    @admin.display(description="total")
    def total(self, obj: Order) -> Decimal:
        return obj.total
