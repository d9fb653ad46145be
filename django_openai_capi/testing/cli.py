"""``python -m django_openai_capi.testing``: serve a fake Conversions API until stopped."""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Sequence
from types import FrameType

from django_openai_capi.testing.fake import FakeConversionsAPI, RecordedRequest


class _Stop(Exception):
    pass


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m django_openai_capi.testing",
        description="Serve a fake OpenAI Ads Conversions API until SIGINT or SIGTERM, "
        "printing one line per request.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8799, help="0 picks a free port")
    parser.add_argument("--api-key", default="test-key", help="the key to accept")
    parser.add_argument(
        "--unscoped-key",
        action="append",
        default=[],
        help="a key without the scope, answered 401 Missing scopes (repeatable)",
    )
    parser.add_argument(
        "--pixel",
        action="append",
        help="a pixel id to accept (repeatable; default: test-pixel)",
    )
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds added to every answer"
    )
    parser.add_argument(
        "--verbose", action="store_true", help="also log every request to stderr"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    lock = threading.Lock()

    def report(request: RecordedRequest) -> None:
        # Never the key: only what identifies the request.
        line = (
            f"{request.status or 'dropped'} pid={request.pixel or '-'} "
            f"events={request.event_count} {request.request_id}"
        )
        with lock:
            print(line, flush=True)

    fake = FakeConversionsAPI(
        args.api_key,
        args.pixel or ["test-pixel"],
        unscoped_keys=args.unscoped_key,
        latency=args.latency,
        on_request=report,
    )
    previous = {
        signum: signal.signal(signum, _stop)
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        fake.start(args.host, args.port, verbose=args.verbose)
        # The URL comes first and alone, so that a caller of --port 0 can read it.
        print(fake.url, flush=True)
        threading.Event().wait()
    except _Stop:
        pass
    finally:
        fake.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0
