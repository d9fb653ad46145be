from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    # The storefront: a landing page, a checkout and its confirmation.
    path("", include("example_project.shop.urls")),
]
