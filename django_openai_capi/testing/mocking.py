"""The ``responses`` transport of the fake, for unit tests without sockets.

Imported only by :meth:`FakeConversionsAPI.mock`: ``responses`` is a test
dependency, not a runtime one.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import requests
import responses

from django_openai_capi.testing.wire import PATH, Reset, Serves

if TYPE_CHECKING:
    from requests import PreparedRequest


def register(fake: Serves, rsps: responses.RequestsMock, url: str) -> None:
    def callback(request: PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        query = urlsplit(request.url or "").query
        body = request.body or b""
        headers = {name: _text(value) for name, value in request.headers.items()}
        # The fake sees its own path whatever URL the test mocked.
        response = fake.serve(
            request.method or "POST",
            f"{PATH}?{query}",
            headers,
            body.encode() if isinstance(body, str) else body,
        )
        if response is None:
            raise requests.ConnectionError(
                "The fake Conversions API dropped the connection.", request=request
            )
        if isinstance(response, Reset):
            raise requests.ConnectionError(
                "The fake Conversions API reset the connection.", request=request
            )
        if response.delay:
            raise requests.ReadTimeout(
                "The fake Conversions API answered too late.", request=request
            )
        return response.status, response.headers, response.body

    pattern = re.compile(re.escape(url) + r"(?:\?.*)?\Z")
    rsps.add_callback(responses.POST, pattern, callback=callback)


def _text(value: object) -> str:
    # requests lets header values be bytes, whatever its type hints say.
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)
