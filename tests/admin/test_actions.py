"""The event list's actions: each behind its own permission, none sending in the request."""

from __future__ import annotations

import json
from typing import Any

import pytest
import responses

from django_openai_capi.admin import base
from django_openai_capi.models import ConversionEvent, ErrorKind
from tests.admin.conftest import CHANGELIST, StaffClient, action
from tests.outbox import ENDPOINT, MakeEvents

pytestmark = pytest.mark.django_db

Status = ConversionEvent.Status


def offered_actions(client: Any) -> set[str]:
    page = client.get(CHANGELIST)
    assert page.status_code == 200
    return {
        name for name, _ in page.context["action_form"].fields["action"].choices if name
    }


def test_a_staff_user_sees_only_the_actions_they_are_allowed(
    staff_client: StaffClient, make_events: MakeEvents
) -> None:
    make_events(1)
    viewer = staff_client("view_conversionevent", username="viewer")
    resender = staff_client(
        "view_conversionevent", "resend_conversionevent", username="resender"
    )
    everything = staff_client(
        "view_conversionevent",
        "resend_conversionevent",
        "cancel_conversionevent",
        "validate_conversionevent",
        username="lead",
    )

    # With no action allowed, the admin offers no action form at all.
    assert viewer.get(CHANGELIST).context["action_form"] is None
    assert offered_actions(resender) == {"resend"}
    assert offered_actions(everything) == {"resend", "cancel", "validate"}


def test_an_action_posted_without_its_permission_changes_nothing(
    staff_client: StaffClient, make_events: MakeEvents
) -> None:
    events = make_events(2, status=Status.FAILED)
    viewer = staff_client("view_conversionevent", "cancel_conversionevent")

    page = action(viewer, "resend", events)

    assert page.status_code == 200
    assert set(ConversionEvent.objects.values_list("status", flat=True)) == {
        Status.FAILED
    }


def test_resend_from_the_list_reports_what_changed_and_what_was_refused(
    staff_client: StaffClient, make_events: MakeEvents
) -> None:
    failed = make_events(2, prefix="failed", status=Status.FAILED, attempts=20)
    sent = make_events(1, prefix="sent", status=Status.SENT)
    client = staff_client("view_conversionevent", "resend_conversionevent")

    page = action(client, "resend", failed + sent)

    texts = [str(message) for message in page.context["messages"]]
    assert texts == [
        "2 events are pending again: delivery sends them with the same ids.",
        "Not resent (1): sent-0: already sent: the API has it.",
    ]
    assert sorted(ConversionEvent.objects.values_list("status", "attempts")) == [
        (Status.PENDING, 0),
        (Status.PENDING, 0),
        (Status.SENT, 0),
    ]


def test_a_refusal_list_longer_than_shown_says_how_many_more(
    admin_client: Any, make_events: MakeEvents
) -> None:
    events = make_events(25, status=Status.SENT)

    page = action(admin_client, "resend", events)

    (text,) = [str(message) for message in page.context["messages"]]
    assert text.startswith("Not resent (25): lead-0: already sent")
    assert text.endswith("; and 5 more.")


def test_cancel_from_the_list(admin_client: Any, make_events: MakeEvents) -> None:
    pending = make_events(1, prefix="pending")
    failed = make_events(1, prefix="failed", status=Status.FAILED)

    page = action(admin_client, "cancel", pending + failed)

    assert [str(m) for m in page.context["messages"]] == [
        "1 event cancelled: it will not be sent.",
        "Not cancelled (1): failed-0: failed: resend it instead.",
    ]
    assert ConversionEvent.objects.get(pk=pending[0].pk).status == Status.CANCELLED


def test_an_event_delivery_moves_on_meanwhile_is_reported(
    admin_client: Any, make_events: MakeEvents, monkeypatch: Any
) -> None:
    from django_openai_capi.admin import actions
    from django_openai_capi.maintenance.resend import ChangeResult

    events = make_events(3, status=Status.FAILED)
    monkeypatch.setattr(
        actions, "resend_events", lambda queryset: ChangeResult(changed=1, moved_on=2)
    )

    page = action(admin_client, "resend", events)

    assert [str(m) for m in page.context["messages"]][-1] == (
        "2 events changed while this ran (delivery got to them first) and were "
        + "left as delivery wrote them."
    )


def rows() -> list[dict[str, Any]]:
    return [dict(row) for row in ConversionEvent.objects.order_by("pk").values()]


def test_validate_shows_each_events_result_and_changes_no_row(
    admin_client: Any,
    make_events: MakeEvents,
    api: responses.RequestsMock,
) -> None:
    def refuse_the_second(request: Any) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body)
        assert body["validate_only"] is True
        ids = [event["id"] for event in body["events"]]
        if "lead-1" in ids:
            error = {
                "message": f"Invalid event at events[{ids.index('lead-1')}].",
                "type": "invalid_request_error",
                "param": f"events[{ids.index('lead-1')}]",
                "code": "invalid_event",
            }
            return 400, {"x-request-id": "req_bad"}, json.dumps({"error": error})
        return 200, {"x-request-id": "req_ok"}, "{}"

    api.add_callback(responses.POST, ENDPOINT, callback=refuse_the_second)
    events = make_events(3, status=Status.FAILED, last_error_kind=ErrorKind.REJECTED)
    events += make_events(1, prefix="unbuilt", payload=None)
    before = rows()

    page = action(admin_client, "validate", events)

    assert rows() == before
    assert page.status_code == 200
    results = {
        row["event_id"]: (row["check"], row["request_id"])
        for row in page.context["rows"]
    }
    assert results == {
        "lead-0": ("ok", "req_ok"),
        "lead-1": ("refused", "req_bad"),
        "lead-2": ("ok", "req_ok"),
        "unbuilt-0": ("not_checked", ""),
    }
    html = page.content.decode()
    assert "2 valid, 1 refused, 1 not checked." in html
    assert "Invalid event at events[" in html
    assert "Not built yet" in html


def test_validate_says_clearly_when_the_api_refuses_the_key_and_never_shows_it(
    admin_client: Any,
    make_events: MakeEvents,
    api: responses.RequestsMock,
    settings: Any,
) -> None:
    settings.OPENAI_CAPI_API_KEY = "sk-secret-conversions-key"
    api.post(
        ENDPOINT,
        status=401,
        json={"error": {"message": "Invalid key sk-secret-conversions-key"}},
        headers={"x-request-id": "req_401"},
    )
    events = make_events(2)

    page = action(admin_client, "validate", events)

    html = page.content.decode()
    assert "sk-secret-conversions-key" not in html
    assert [row["check"] for row in page.context["rows"]] == ["not_checked"] * 2
    assert "req_401" in html
    assert "Conversions API key" in html  # what to do about it


def test_validate_says_when_the_api_does_not_answer(
    admin_client: Any, make_events: MakeEvents, api: responses.RequestsMock
) -> None:
    api.post(ENDPOINT, body=ConnectionError("connection refused"))
    events = make_events(1)

    page = action(admin_client, "validate", events)

    (row,) = page.context["rows"]
    assert row["check"] == "not_checked"
    assert "connection refused" in row["message"]
    assert "check again later" in row["message"]


def test_validate_refuses_a_selection_larger_than_one_request(
    admin_client: Any,
    make_events: MakeEvents,
    api: responses.RequestsMock,
    settings: Any,
) -> None:
    settings.OPENAI_CAPI_BATCH_SIZE = 2
    events = make_events(3)

    page = action(admin_client, "validate", events)

    assert [str(m) for m in page.context["messages"]] == [
        "Select at most 2 events to validate (one request's worth, "
        + "OPENAI_CAPI_BATCH_SIZE): nothing was sent."
    ]
    assert len(api.calls) == 0


@pytest.mark.parametrize("name", ["resend", "cancel"])
def test_select_all_beyond_what_the_list_counted_changes_nothing(
    admin_client: Any, make_events: MakeEvents, monkeypatch: Any, name: str
) -> None:
    # The list says "Select all 5" when it stopped counting at 5: acting on every
    # match would change an untold number of rows.
    monkeypatch.setattr(base, "COUNT_CAP", 5)
    status = Status.FAILED if name == "resend" else Status.PENDING
    events = make_events(6, status=status)

    page = admin_client.post(
        CHANGELIST,
        {
            "action": name,
            "select_across": "1",
            "_selected_action": [str(events[0].pk)],
            "index": "0",
        },
        follow=True,
    )

    assert (
        "More than 5 events match, more than the list counts: nothing was changed"
        in (page.content.decode())
    )
    assert set(ConversionEvent.objects.values_list("status", flat=True)) == {status}


def test_select_all_within_the_count_acts_on_every_match(
    admin_client: Any, make_events: MakeEvents, monkeypatch: Any
) -> None:
    monkeypatch.setattr(base, "COUNT_CAP", 5)
    events = make_events(5, status=Status.FAILED)

    admin_client.post(
        CHANGELIST,
        {
            "action": "resend",
            "select_across": "1",
            "_selected_action": [str(events[0].pk)],
            "index": "0",
        },
        follow=True,
    )

    assert set(ConversionEvent.objects.values_list("status", flat=True)) == {
        Status.PENDING
    }
