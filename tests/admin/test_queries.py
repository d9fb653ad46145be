"""The lists and the status page make the same queries for 10 rows as for 200."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_openai_capi.admin import base
from django_openai_capi.models import ConversionEvent, DeliveryBatch, ErrorKind
from tests.admin.conftest import CHANGELIST, STATUS_PAGE
from tests.outbox import MakeEvents

pytestmark = pytest.mark.django_db

Status = ConversionEvent.Status

VIEWS = {
    "unfiltered": CHANGELIST,
    "by status": CHANGELIST + "?status__exact=failed",
    "by type": CHANGELIST + "?event_type__exact=lead_created",
    "by pixel": CHANGELIST + "?pixel_id=test-pixel",
    "by error kind": CHANGELIST + "?last_error_kind__exact=server",
    "by event id": CHANGELIST + "?q=lead-3",
    "by source": CHANGELIST + "?q=test:lead-3",
    "every filter": CHANGELIST
    + "?status__exact=failed&event_type__exact=lead_created&pixel_id=test-pixel"
    + "&last_error_kind__exact=server&q=lead-3",
    "with the filters' counts asked for": CHANGELIST + "?_facets=True",
    "the status page": STATUS_PAGE,
    "the request log": "/admin/django_openai_capi/deliverybatch/?pixel_id=test-pixel",
}


def seed(make_events: MakeEvents, count: int) -> None:
    third = count // 3
    make_events(
        third, prefix="lead", status=Status.FAILED, last_error_kind=ErrorKind.SERVER
    )
    make_events(third, prefix="sent", status=Status.SENT)
    make_events(count - 2 * third, prefix="pending")
    DeliveryBatch.objects.bulk_create(
        DeliveryBatch(
            claim_id=uuid.uuid4(),
            pixel_id="test-pixel",
            size=10,
            outcome=DeliveryBatch.Outcome.ACCEPTED,
        )
        for _ in range(count // 10)
    )


def queries(client: Any, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        page = client.get(url)
    assert page.status_code == 200
    return [query["sql"] for query in captured.captured_queries]


@pytest.mark.parametrize("view", list(VIEWS))
def test_the_number_of_queries_does_not_grow_with_the_rows(
    admin_client: Any, make_events: MakeEvents, view: str
) -> None:
    seed(make_events, 10)
    few = queries(admin_client, VIEWS[view])
    ConversionEvent.objects.all().delete()
    DeliveryBatch.objects.all().delete()
    seed(make_events, 200)

    many = queries(admin_client, VIEWS[view])

    assert len(few) == len(many) == EXPECTED_QUERIES.get(view, 6)


#: A list page: the session, the user, the pixel filter's two sources of choices (the
#: pauses, the last week's requests), the capped count and the page of rows. The status
#: page: the session and the user, 6 capped counts, the oldest pending event, the
#: events that failed per hour (where the newest COUNT_CAP end, then their count per
#: hour), the requests per hour and outcome, the last event error of each of 11 kinds
#: and the last failed request of each of 7 outcomes (BENCHMARKS.md, "Admin"); and the
#: banners' health.assess(): failures, pauses, 2 probes for pending pixels, and the
#: pending count, oldest due event and last accepted request of the one pixel.
EXPECTED_QUERIES = {"the status page": 12 + len(ErrorKind) + 7 + 7}


@pytest.mark.parametrize("view", [name for name in VIEWS if name != "the status page"])
def test_no_list_query_reads_the_payload_or_counts_the_whole_table(
    admin_client: Any, make_events: MakeEvents, view: str
) -> None:
    seed(make_events, 30)

    sql = queries(admin_client, VIEWS[view])

    assert not [query for query in sql if "payload" in query or '"context"' in query]
    # Every count is of a LIMIT-ed subquery, never of the table.
    counts = [query for query in sql if "COUNT(" in query.upper()]
    assert counts
    assert all("LIMIT" in query.upper() for query in counts)
    assert not [query for query in sql if "DISTINCT" in query.upper()]


def test_the_search_matches_exactly_not_case_insensitively(
    admin_client: Any, make_events: MakeEvents
) -> None:
    make_events(3)

    exact = admin_client.get(CHANGELIST, {"q": "lead-1"})
    other_case = admin_client.get(CHANGELIST, {"q": "LEAD-1"})
    by_source = admin_client.get(CHANGELIST, {"q": " test:lead-2 "})

    assert [e.event_id for e in exact.context["cl"].result_list] == ["lead-1"]
    assert list(other_case.context["cl"].result_list) == []
    assert [e.event_id for e in by_source.context["cl"].result_list] == ["lead-2"]


def test_a_list_longer_than_the_cap_says_it_stopped_counting(
    admin_client: Any, make_events: MakeEvents, monkeypatch: Any
) -> None:
    monkeypatch.setattr(base, "COUNT_CAP", 5)
    make_events(8)

    capped = admin_client.get(CHANGELIST)
    under = admin_client.get(CHANGELIST, {"q": "lead-1"})

    assert capped.context["cl"].result_count == 5
    assert b"More than 5 conversion events match" in capped.content
    assert b"More than" not in under.content
