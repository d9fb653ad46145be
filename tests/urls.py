from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    # The example project's storefront, for the browser test and the view tests.
    path("", include("example_project.shop.urls")),
]
