"""``manage.py openai_capi_verify``: does the key work for the pixel, and if not, what to do."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_openai_capi.delivery.verification import VerifyResult, verify


class Command(BaseCommand):
    help = (
        "Send one validate_only test event to the pixel and say plainly whether the "
        "key and pixel work and, if not, what to do. OpenAI records nothing. Exits "
        "with status 1 when the check fails."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--pixel",
            metavar="PIXEL_ID",
            help="The pixel to check (default: OPENAI_CAPI_PIXEL_ID). Its key comes from "
            "OPENAI_CAPI_PIXEL_API_KEYS, or OPENAI_CAPI_API_KEY.",
        )
        parser.add_argument(
            "--database",
            default="default",
            help="The database holding the pixel pauses (default: 'default').",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        result = verify(options["pixel"], using=options["database"])
        for line in describe(result):
            self.stdout.write(line)
        if not result.ok:
            raise CommandError(f"{result.summary}\n{result.advice}")
        self.stdout.write(self.style.SUCCESS(f"OK: {result.summary}"))
        self.stdout.write(result.advice)


def describe(result: VerifyResult) -> list[str]:
    """What was checked and what came back: the lines before the verdict."""
    lines = []
    if result.pixel_id is not None:
        lines.append(f"Pixel:    {result.pixel_id}")
    lines.append(f"Endpoint: {result.endpoint}")
    if result.key_setting:
        lines.append(f"Key:      from {result.key_setting} (not shown)")
    if result.event_id:
        answer = (
            "no answer"
            if result.http_status is None
            else f"HTTP {result.http_status}"
            + (f", request id {result.request_id}" if result.request_id else "")
        )
        lines.append(f"Answer:   {answer}, after {result.duration_ms} ms")
    if result.message:
        lines.append(f"Message:  {result.message}")
    lines.extend(f"Note: {note}" for note in result.notes)
    return lines
