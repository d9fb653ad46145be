from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.utils.html import format_html


def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse(
        format_html(
            "<!doctype html><title>django-openai-capi demo</title>"
            "<h1>django-openai-capi demo</h1>"
            "<p>An example Django project with <code>django_openai_capi</code> installed."
            " Conversion events will be sent to <code>{}</code> for pixel <code>{}</code>"
            " (by default a local fake of the Conversions API, with a made-up key).</p>"
            "<p>Orders (in the shop), registrations (in accounts) and subscriptions"
            " (in billing) created in the admin are recorded as conversion events:"
            " <code>order_created</code> for a paid order with its lines,"
            " <code>registration_completed</code> and <code>subscription_created</code>,"
            " written in the same transaction as the save, and sent to the API right"
            ' after the commit (OPENAI_CAPI_DISPATCH = "inline" in this demo).</p>'
            '<p>See them in the admin under <a href="/admin/django_openai_capi/'
            'conversionevent/">Conversion events</a>, with each request under'
            ' <a href="/admin/django_openai_capi/deliverybatch/">Delivery batches</a>.'
            " <code>make demo</code> runs the fake API on loopback, which prints every"
            " request it receives.</p>"
            '<p><a href="/admin/">Admin</a> (the demo user is admin / admin).</p>',
            settings.OPENAI_CAPI_ENDPOINT,
            settings.OPENAI_CAPI_PIXEL_ID,
        )
    )


urlpatterns = [
    path("", home, name="home"),
    path("admin/", admin.site.urls),
]
