"""The Measurement Pixel's JavaScript, as the template tags render it.

The loader is OpenAI's official snippet, unchanged but for the values it is given:
https://developers.openai.com/ads/measurement-pixel (and its ``.md`` twin), section
"Install the Measurement Pixel", as published in 2026-11. The calls are the documented
ones: ``oaiq("consent", false)`` before ``init`` (consent section of the same page),
``oaiq("measure", eventName, eventProps, eventOptions)`` with ``event_id`` and
``custom_event_name`` in ``eventOptions``, and ``oaiq("measureSingle", pixelId, ...)``
for a pixel other than the page's (https://developers.openai.com/ads/multiple-pixels).

Every value reaches the page through :func:`js_value`, which makes it a JavaScript
literal that cannot close the ``<script>`` element or open another one, whatever it
holds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

SDK_URL = "https://bzrcdn.openai.com/sdk/oaiq.min.js"

# The official loader, verbatim: it defines the oaiq queue and loads the SDK once.
_LOADER = """\
(function (w, d, s, u) {
    if (w.oaiq) return;
    var q = function () {
      q.q.push(arguments);
    };
    q.q = [];
    w.oaiq = q;
    var js = d.createElement(s);
    js.async = true;
    js.src = u;
    var f = d.getElementsByTagName(s)[0];
    f.parentNode.insertBefore(js, f);
  })(window, document, "script", %s);"""

# Django's json_script escapes: inside <script>, "</script>" or "<!--" in a string
# would end or change the element; as \\u003C they are just characters.
_SCRIPT_ESCAPES = {ord("<"): "\\u003C", ord(">"): "\\u003E", ord("&"): "\\u0026"}


def js_value(value: object) -> str:
    """*value* as a JavaScript literal that is safe inside a ``<script>`` element.

    JSON (every JSON text is a JavaScript expression), all non-ASCII escaped (so
    U+2028 and U+2029 too, which older engines took for line ends), and ``<``, ``>``
    and ``&`` escaped.
    """
    return json.dumps(value, ensure_ascii=True, allow_nan=False).translate(
        _SCRIPT_ESCAPES
    )


def call(*arguments: object) -> str:
    """``oaiq(...)`` with *arguments*, each escaped by :func:`js_value`."""
    return "oaiq(" + ", ".join(js_value(argument) for argument in arguments) + ");"


def loader(pixel_id: str, *, consent: bool) -> str:
    """The official snippet's JavaScript for *pixel_id*.

    Without consent, ``oaiq("consent", false)`` comes before ``init``: the pixel then
    sends nothing, clears its cookies, and waits for a consent manager to call
    ``oaiq("consent", true)`` on the page.
    """
    lines = [_LOADER % js_value(SDK_URL)]
    if not consent:
        lines.append(call("consent", False))
    lines.append(call("init", {"pixelId": pixel_id}))
    return "\n  ".join(lines)


def measure(
    *,
    pixel_id: str,
    page_pixel_id: str | None,
    event_name: str,
    data: Mapping[str, object],
    options: Mapping[str, object],
) -> str:
    """The call that reports one event to *pixel_id*.

    ``measure`` when it is the page's pixel, the one the snippet initialises;
    otherwise that pixel is initialised too and the event sent to it alone with
    ``measureSingle`` (``measure`` would send it to every initialised pixel). Nothing
    happens on a page without the snippet, rather than a ReferenceError.
    """
    if pixel_id == page_pixel_id:
        calls = [call("measure", event_name, data, options)]
    else:
        calls = [
            call("init", {"pixelId": pixel_id}),
            call("measureSingle", pixel_id, event_name, data, options),
        ]
    return "if (window.oaiq) {\n  " + "\n  ".join(calls) + "\n}"


def script(body: str, *, nonce: str | None) -> SafeString:
    """A ``<script>`` element around *body*, with the CSP nonce when there is one."""
    attributes = format_html(' nonce="{}"', nonce) if nonce else ""
    # body is built only from js_value() literals and fixed text.
    return mark_safe(f"<script{attributes}>\n  {body}\n</script>")  # noqa: S308
