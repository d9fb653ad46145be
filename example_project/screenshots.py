"""``python -m example_project.screenshots [--out DIR]``: the admin's pictures in the docs.

Made from the demo, never by hand, so that they show the admin as it is: the demo's
project, data and superuser (``example_project.demo``), on a database and ports of
their own, so that a running ``make demo`` is left alone. The fake Conversions API
runs in this process, where its faults can be scripted:

1. an outage (HTTP 503) while ``demo_data`` records the demo's conversions: the first
   order's request fails, and with ``OPENAI_CAPI_MAX_ATTEMPTS=1`` delivery gives up on
   it at once; the pause that follows holds the rest back;
2. the outage over, the fake rejects the second order (HTTP 400) and ``openai_capi_send``
   sends the rest: the rejected order fails, the others are accepted;
3. in the admin: the failed events, the rejected one's page, the resend of the first
   order and its message, the request log;
4. the key revoked at the fake, ``openai_capi_send`` gets a 401 for the resent order
   and pauses the pixel: the status page and the pause list say so.

Chromium is the system's (``/usr/bin/chromium``): Playwright downloads nothing.
Times, request IDs and claim IDs are the run's own; the data, the states and the
layout are the same on every run.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from example_project.demo import ROOT, Children, StepFailed, prepare_database

CHROMIUM = Path("/usr/bin/chromium")
DEFAULT_OUT = ROOT / "docs" / "_static" / "screenshots"
WIDTH = 1280
VIEWPORT_HEIGHT = 800
PIXEL = "demo-pixel"
KEY = "demo-key"
#: The demo's orders get the default event id, "shop.order:<pk>": on a new database,
#: the first order is 1 and the second 2.
FAILED_BY_OUTAGE = "shop.order:1"
REJECTED = "shop.order:2"
#: openai_capi_send's exit status for a paused pixel (health.ExitCode.PAUSED).
PAUSED = 3
#: How long to wait for runserver to answer.
SERVER_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Shot:
    """A picture the docs show: its file name and its size in pixels."""

    name: str
    height: int
    width: int = WIDTH


#: Every picture the script makes, in the order it makes them. The docs refer to them
#: by these names (tests/test_docs_screenshots.py holds the two to each other).
SHOTS = (
    Shot("events-failed.png", 480),
    Shot("event-failed.png", 1530),
    Shot("resend-message.png", 300),
    Shot("batches.png", 470),
    Shot("status.png", 1000),
    Shot("pauses.png", 300),
)
_BY_NAME = {shot.name: shot for shot in SHOTS}

ADMIN = "/admin/django_openai_capi"


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """The width and height of a PNG image; ValueError if *data* is not a whole one."""
    # The signature, the IHDR chunk (length 13, type, width, height, 5 more bytes,
    # CRC), ..., and the empty IEND chunk: a file cut short fails the last test.
    if (
        data[:8] != PNG_SIGNATURE
        or data[8:16] != b"\x00\x00\x00\x0dIHDR"
        or zlib.crc32(data[12:29]) != int.from_bytes(data[29:33])
        or data[-12:] != b"\x00\x00\x00\x00IEND\xaeB`\x82"
    ):
        raise ValueError("not a PNG image, or not all of one")
    return int.from_bytes(data[16:20]), int.from_bytes(data[20:24])


def free_port() -> int:
    """A port nothing listens on now (the OS's choice), for runserver."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(addr: str, timeout: float = SERVER_TIMEOUT) -> None:
    host, port = addr.rsplit(":", 1)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"runserver did not answer on {addr}") from None
            time.sleep(0.2)


def arrange(children: Children, fake: Any) -> None:
    """Record the demo's data and deliver it into the states the pictures show."""
    prepare_database(children)
    fake.outage("auth_backend_failure")
    children.run("manage.py demo_data", "manage.py", "demo_data")
    fake.outage(None)
    fake.reject_events({REJECTED})
    # The 503 paused the pixel for OPENAI_CAPI_RETRY_BACKOFF (1 s here) at most.
    time.sleep(1.5)
    children.run("manage.py openai_capi_send", "manage.py", "openai_capi_send")
    accepted = fake.accepted_ids(PIXEL)
    # Said here, rather than as a page element Playwright waits 30 s for in vain.
    if not accepted or {FAILED_BY_OUTAGE, REJECTED} & set(accepted):
        raise StepFailed(
            "Arranging the demo's deliveries (the fake accepted "
            + f"{sorted(accepted)}; expected all but {FAILED_BY_OUTAGE} and {REJECTED})",
            1,
        )


def pause_the_pixel(children: Children, fake: Any) -> None:
    """Revoke the key at the fake and send: the 401 pauses the pixel."""
    fake.revoke_key(KEY)
    # A pause of minutes, as a real one would be, not the second of the steps before.
    children.environ["OPENAI_CAPI_RETRY_BACKOFF"] = "300"
    code = children.start("manage.py", "openai_capi_send").wait()
    # Exit status 3 (health.ExitCode.PAUSED) is the state to show: anything else is not.
    if code != PAUSED:
        raise StepFailed("manage.py openai_capi_send, to pause the pixel", code or 1)


def capture(
    browser_path: Path, site: str, out: Path, children: Children, fake: Any
) -> list[Path]:
    from playwright.sync_api import sync_playwright

    made: list[Path] = []

    def shoot(page: Any, name: str) -> None:
        shot = _BY_NAME[name]
        path = out / shot.name
        page.screenshot(
            path=str(path),
            clip={"x": 0, "y": 0, "width": shot.width, "height": shot.height},
            full_page=True,
            animations="disabled",
            caret="hide",
        )
        made.append(path)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(browser_path))
        try:
            context = browser.new_context(
                viewport={"width": WIDTH, "height": VIEWPORT_HEIGHT},
                device_scale_factor=1,
                color_scheme="light",
                locale="en-US",
                timezone_id="UTC",
            )
            # The navigation sidebar closed, as its toggle leaves it: the width goes
            # to the page itself.
            context.add_init_script(
                "localStorage.setItem('django.admin.navSidebarIsOpen', 'false')"
            )
            page = context.new_page()
            page.goto(f"{site}/admin/login/")
            page.get_by_label("Username").fill("admin")
            page.get_by_label("Password").fill("admin")
            page.locator("input[type=submit]").click()
            page.wait_for_url(f"{site}/admin/")

            page.goto(f"{site}{ADMIN}/conversionevent/?status__exact=failed")
            shoot(page, "events-failed.png")

            page.locator("#result_list tbody tr", has_text=REJECTED).locator(
                "th.field-id a, td.field-id a"
            ).first.click()
            page.wait_for_selector("pre.capi-error")
            shoot(page, "event-failed.png")

            page.goto(f"{site}{ADMIN}/conversionevent/?status__exact=failed")
            page.locator("#result_list tbody tr", has_text=FAILED_BY_OUTAGE).locator(
                "input[name=_selected_action]"
            ).check()
            page.locator("select[name=action]").select_option("resend")
            page.locator("button[name=index]").click()
            page.wait_for_selector("ul.messagelist li")
            shoot(page, "resend-message.png")

            page.goto(f"{site}{ADMIN}/deliverybatch/")
            shoot(page, "batches.png")

            pause_the_pixel(children, fake)
            page.goto(f"{site}{ADMIN}/deliverystatus/")
            page.wait_for_selector("svg.capi-chart")
            shoot(page, "status.png")

            page.goto(f"{site}{ADMIN}/pixelpause/")
            shoot(page, "pauses.png")
        finally:
            browser.close()
    return made


def make_screenshots(out: Path, browser_path: Path = CHROMIUM) -> list[Path]:
    """Run the demo on a scratch database and ports, and write :data:`SHOTS` to *out*."""
    from django_openai_capi.testing import FakeConversionsAPI

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="capi-screenshots-") as scratch:
        fake = FakeConversionsAPI(KEY, [PIXEL]).start("127.0.0.1", 0)
        addr = f"127.0.0.1:{free_port()}"
        environ = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("OPENAI_CAPI_", "DEMO_"))
        }
        children = Children(
            {
                **environ,
                # Not a test run's settings or database, nor a running demo's.
                "DJANGO_SETTINGS_MODULE": "example_project.settings",
                "DATABASE_URL": f"sqlite:///{Path(scratch) / 'db.sqlite3'}",
                "DEMO_FAKE_PORT": str(urlsplit(fake.url).port),
                "DEBUG": "true",
                # One failure is final, and a pause after a 503 lasts a second at
                # most: failed events without waiting out retries.
                "OPENAI_CAPI_MAX_ATTEMPTS": "1",
                "OPENAI_CAPI_RETRY_BACKOFF": "1",
            }
        )
        try:
            arrange(children, fake)
            children.start("manage.py", "runserver", "--noreload", addr)
            wait_for(addr)
            return capture(browser_path, f"http://{addr}", out, children, fake)
        finally:
            children.stop_all()
            fake.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m example_project.screenshots",
        description="Make the admin screenshots of the docs from the demo.",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"the directory to write them to (default: {DEFAULT_OUT.relative_to(ROOT)})",
    )
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        print(
            f"Needs Chromium at {CHROMIUM} (apt-get install chromium).", file=sys.stderr
        )
        return 2
    try:
        made = make_screenshots(args.out)
    except StepFailed as exc:
        print(exc, file=sys.stderr)
        return exc.code
    for path in made:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
