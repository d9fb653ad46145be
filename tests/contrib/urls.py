"""Health-check endpoints as the README recommends them: delivery only where monitors look."""

from __future__ import annotations

from django.urls import path
from health_check.views import HealthCheckView

CHECK = "django_openai_capi.contrib.health_check.backends.OpenAIConversions"

urlpatterns = [
    # What uptime monitors watch: the application's services, this app among them.
    path("health/application/", HealthCheckView.as_view(checks=[CHECK])),
    path(
        "health/strict/",
        HealthCheckView.as_view(checks=[(CHECK, {"fail_on_error": True})]),
    ),
    path(
        "health/other-pixel/",
        HealthCheckView.as_view(checks=[(CHECK, {"pixels": ["other-pixel"]})]),
    ),
]
