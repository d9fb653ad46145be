"""A sign-up page as a Django shop without allauth writes it, and the admin."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin
from django.contrib.auth import login
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path

# Generic only to the type checker (django-stubs); not subscriptable at run time.
if TYPE_CHECKING:
    _UserCreationForm = UserCreationForm[User]
else:
    _UserCreationForm = UserCreationForm


class SignUpForm(_UserCreationForm):
    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email", "first_name", "last_name")


def sign_up(request: HttpRequest) -> HttpResponse:
    form = SignUpForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        login(request, form.save())
        return HttpResponseRedirect("/welcome/")
    return HttpResponse(form.errors.as_text(), status=400 if form.is_bound else 200)


urlpatterns = [
    path("signup/", sign_up, name="signup"),
    path("admin/", admin.site.urls),
]
