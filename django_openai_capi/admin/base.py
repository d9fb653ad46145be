"""What every outbox list shares: read-only, no full count, exact search."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from django_openai_capi.redaction import redact

if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[Model]
else:  # ModelAdmin is generic for the type checker only
    _ModelAdmin = admin.ModelAdmin

#: A list counts its rows up to here, and says "more than" beyond.
COUNT_CAP = 10_000
#: What a list shows of an error; the row's page shows all of it.
ERROR_EXCERPT = 120


def error_excerpt(text: str) -> str:
    """The start of a stored error for a list column, redacted before it is cut.

    Stored texts are redacted already; again here for a key added to the settings
    since. Before the cut, so that a cut cannot leave half a key unrecognised.
    """
    return redact(text, limit=ERROR_EXCERPT)


def error_block(text: str) -> SafeString:
    """A stored error in full for a row's page, redacted (as above) and escaped."""
    if not text:
        return format_html("{}", "—")
    return format_html('<pre class="capi-error">{}</pre>', redact(text))


class CappedPaginator(Paginator):  # type: ignore[type-arg]
    """A paginator that counts at most ``COUNT_CAP`` rows.

    The changelist counts its (filtered) rows for the page links; on a table of
    millions that count is a scan. Counting a ``LIMIT``-ed subquery reads at most
    ``COUNT_CAP + 1`` index entries; the pages past the cap are reached by filtering.
    """

    @cached_property
    def count(self) -> int:
        return min(self._counted, COUNT_CAP)

    @cached_property
    def capped(self) -> bool:
        return self._counted > COUNT_CAP

    @cached_property
    def _counted(self) -> int:
        # Always a queryset here: the admin paginates nothing else.
        counted: int = self.object_list[: COUNT_CAP + 1].count()  # type: ignore[attr-defined]
        return counted


class NoWritesAdmin(_ModelAdmin):
    """Nothing added, changed or deleted through the admin: delivery writes the rows."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: Model | None = None
    ) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: Model | None = None
    ) -> bool:
        return False


class ReadOnlyAdmin(NoWritesAdmin):
    paginator = CappedPaginator
    show_full_result_count = False
    # "Show counts" would count every choice of every filter: a scan per choice.
    show_facets = admin.ShowFacets.NEVER
    #: Columns matched exactly (``=``, not the ``iexact`` of Django's ``=field``,
    #: which no plain index serves), joined with OR.
    exact_search_fields: tuple[str, ...] = ()

    def get_search_fields(self, request: HttpRequest) -> tuple[str, ...]:
        # Non-empty, so that the admin shows the search box; the search is ours.
        return self.exact_search_fields

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        term = search_term.strip()
        if not term or not self.exact_search_fields:
            return queryset, False
        match = Q()
        for name in self.exact_search_fields:
            match |= Q(**{name: term})
        return queryset.filter(match), False
