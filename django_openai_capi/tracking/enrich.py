"""Building an event with the visitor's context filling what the host left empty.

The host's own values always win: a conversion's hooks, or a ``track()`` call's
arguments. The request context only fills the gaps: ``oppref`` at the event level,
``obref``, the IP and the user agent in ``user``, and the page's URL as ``source_url``.
A context value the API would refuse is left out and the event built without it: the
visitor's browser supplied it, and it must not cost the conversion.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from django_openai_capi.api import spec
from django_openai_capi.api.events import JSONObject, build_event
from django_openai_capi.exceptions import EventValidationError
from django_openai_capi.tracking.context import USER_FIELDS, RequestContext

logger = logging.getLogger("django_openai_capi.tracking")


def build_with_context(
    event_type: str,
    *,
    context: RequestContext,
    event_id: str,
    event_time: datetime,
    data: Mapping[str, object] | None,
    user: Mapping[str, object] | None,
    custom_event_name: str | None,
    action_source: str | None,
    source_url: str | None,
    oppref: str | None,
    opt_out: bool | None,
    now: int | None,
) -> JSONObject:
    """:func:`build_event`, with *context* filling what the other arguments leave empty.

    ``action_source=None`` means the default (:func:`default_action_source`), decided
    after the context has filled the URL. Raises :class:`EventValidationError` for the
    problems of the host's own values.
    """
    while True:
        url = context.source_url if _empty(source_url) else source_url
        try:
            return build_event(
                event_type,
                event_id=event_id,
                event_time=event_time,
                data=data,
                user=_with_user_context(user, context),
                custom_event_name=custom_event_name,
                action_source=action_source or default_action_source(event_type, url),
                source_url=url,
                oppref=context.oppref if _empty(oppref) else oppref,
                opt_out=opt_out,
                now=now,
            )
        except EventValidationError as exc:
            refused = _refused_context(exc, context, user, source_url, oppref)
            if not refused:
                raise
            # Names only: the values are the visitor's, and may be personal.
            logger.info(
                "Left the request's %s out of event %s: the API would refuse it.",
                ", ".join(sorted(refused)),
                event_id,
            )
            context = context.without(refused)


def default_action_source(event_type: str, source_url: object) -> str | None:
    """``action_source`` when the caller gives none: ``"mobile_app"`` for the app
    events, ``"web"`` when there is a source URL, else none."""
    if event_type in spec.MOBILE_APP_EVENT_TYPES:
        return "mobile_app"
    return "web" if source_url else None


def _with_user_context(
    user: Mapping[str, object] | None, context: RequestContext
) -> Mapping[str, object] | None:
    missing = {
        key: value
        for key in USER_FIELDS
        if (value := getattr(context, key)) is not None and _left_empty(user, key)
    }
    if not missing:
        return user
    return {**(user or {}), **missing}


def _left_empty(user: Mapping[str, object] | None, key: str) -> bool:
    return _empty(user.get(key) if user else None)


def _empty(value: object) -> bool:
    # None or a blank string is what a hook returns for "I have none": the context
    # may fill it.
    return value is None or (isinstance(value, str) and not value.strip())


def _refused_context(
    error: EventValidationError,
    context: RequestContext,
    user: Mapping[str, object] | None,
    source_url: str | None,
    oppref: str | None,
) -> set[str]:
    """The context fields that were used in the event and that *error* names."""
    used = {
        "oppref": context.oppref is not None and _empty(oppref),
        "source_url": context.source_url is not None and _empty(source_url),
    }
    for key in USER_FIELDS:
        used[key] = getattr(context, key) is not None and _left_empty(user, key)
    paths = {
        "oppref": "oppref",
        "source_url": "source_url",
        **{key: f"user.{key}" for key in USER_FIELDS},
    }
    named = set(error.paths)
    return {
        name for name, in_event in used.items() if in_event and paths[name] in named
    }
