"""``python -m django_openai_capi.testing``: serve a fake Conversions API until stopped.

It prints its URL alone on the first line (set ``OPENAI_CAPI_ENDPOINT`` to it), then a
line saying which faults are active, then one line per request: status (or
``dropped``), pixel, event count and request id; never a key.

Faults, to watch what the app does with a bad answer (all can be combined; a request
takes the first that applies, in this order):

``--fail-next N --fail-with FAULT``
    the next N requests get FAULT. FAULT is a named fault (``server_error``,
    ``auth_backend_failure``, ``rate_limited``, ``unauthorized``, ``unknown_pid``,
    ``drop``, ...) or an HTTP status from 400 to 599 (``--fail-with 504``).
``--fail-randomly FAULT=CHANCE``
    each request gets FAULT with that chance (``--fail-randomly server_error=0.2``;
    repeatable; ``--seed`` replays the same draws).
``--outage [SECONDS]``
    every request gets the ``--fail-with`` fault, for SECONDS or until the fake stops.
``--reject-event ID``
    a batch holding that event id is refused as invalid (400 ``invalid_event`` naming
    it), as the API refuses a bad event (repeatable).
``--latency SECONDS``
    every answer comes that much later.

``kill -HUP <pid>`` clears every fault without a restart: the fake answers normally,
and events the app failed can be resent from the admin and accepted.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from django_openai_capi.testing.errors import FAULT_KINDS
from django_openai_capi.testing.fake import (
    FakeConversionsAPI,
    RecordedRequest,
    over_one,
)

_FAULTS = ", ".join(sorted(FAULT_KINDS))


class _Stop(Exception):
    pass


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be from 0 to 65535, not {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds"
        ) from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds, 0 or more, not {text}"
        )
    return value


def _fault(text: str) -> str | int:
    """A named fault, or an HTTP status from 400 to 599."""
    if text in FAULT_KINDS:
        return text
    try:
        status = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"unknown fault {text!r}: use an HTTP status from 400 to 599 or one of "
            f"{_FAULTS}"
        ) from None
    if not 400 <= status <= 599:
        raise argparse.ArgumentTypeError(
            f"a fault's HTTP status must be from 400 to 599, not {status}"
        )
    return status


def _weighted_fault(text: str) -> tuple[str | int, float]:
    fault, equals, chance = text.partition("=")
    if not equals:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not FAULT=CHANCE (e.g. server_error=0.2)"
        )
    try:
        value = float(chance)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"the chance in {text!r} is not a number from 0 to 1"
        ) from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"the chance in {text!r} must be from 0 to 1")
    return _fault(fault), value


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m django_openai_capi.testing",
        description="Serve a fake OpenAI Ads Conversions API until SIGINT or SIGTERM, "
        "printing its URL, the active faults, then one line per request. "
        "SIGHUP (kill -HUP <pid>) clears every fault: the fake answers normally again.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=_port, default=8799, help="0 picks a free port")
    parser.add_argument("--api-key", default="test-key", help="the key to accept")
    parser.add_argument(
        "--unscoped-key",
        action="append",
        default=[],
        help="a key without the scope, answered 401 Missing scopes: the app pauses "
        "the pixel (repeatable)",
    )
    parser.add_argument(
        "--pixel",
        action="append",
        help="a pixel id to accept (repeatable; default: test-pixel); another pixel "
        "is answered 403 unknown pid and the app pauses it",
    )
    faults = parser.add_argument_group(
        "faults",
        "Try what the app does with bad answers: the admin's event list shows each "
        "event's error, and its resend action sends failed events again once the "
        "fault is gone (SIGHUP or a restart without the option).",
    )
    faults.add_argument(
        "--reject-event",
        action="append",
        default=[],
        metavar="ID",
        help="refuse a batch holding this event id as the API refuses an invalid "
        "event (400 invalid_event naming it): the app sends the rest of the batch "
        "and marks this event failed; resend it from the admin (repeatable)",
    )
    faults.add_argument(
        "--fail-next",
        type=_count,
        default=0,
        metavar="N",
        help="answer the next N requests with the --fail-with fault: the app retries "
        "them with backoff, or pauses the pixel for an auth fault",
    )
    faults.add_argument(
        "--fail-with",
        type=_fault,
        metavar="FAULT",
        help="the fault of --fail-next and --outage: an HTTP status from 400 to 599 "
        f"(e.g. 503), or one of {_FAULTS} (default: server_error, a 500)",
    )
    faults.add_argument(
        "--outage",
        type=_seconds,
        nargs="?",
        const=math.inf,
        metavar="SECONDS",
        help="answer every request with the --fail-with fault, for SECONDS or, "
        "without a value, until the fake stops: the app retries with backoff until "
        "OPENAI_CAPI_MAX_ATTEMPTS, then marks the events failed (an auth fault "
        "pauses the pixel instead)",
    )
    faults.add_argument(
        "--fail-randomly",
        type=_weighted_fault,
        action="append",
        default=[],
        metavar="FAULT=CHANCE",
        help="answer each request with FAULT with this chance from 0 to 1, e.g. "
        "server_error=0.2 (repeatable; chances sum to at most 1)",
    )
    faults.add_argument(
        "--seed",
        type=int,
        help="seed of --fail-randomly's draws: the same seed replays the same faults",
    )
    faults.add_argument(
        "--retry-after",
        type=_count,
        default=1,
        metavar="SECONDS",
        help="the Retry-After of a 429 fault (rate_limited or 429); the app waits "
        "at least this long (default: 1)",
    )
    faults.add_argument(
        "--delay",
        type=_seconds,
        default=1.0,
        metavar="SECONDS",
        help="how long the delay fault waits before answering (default: 1): longer "
        "than OPENAI_CAPI_TIMEOUT and the app times out and retries",
    )
    faults.add_argument(
        "--latency",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="seconds added to every answer",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="also log every request to stderr"
    )
    return parser


def _describe(fault: str | int) -> str:
    return f"HTTP {fault}" if isinstance(fault, int) else fault


def describe_faults(args: argparse.Namespace) -> str:
    """The start-up line naming the active faults."""
    active = []
    if args.fail_next:
        requests = "request" if args.fail_next == 1 else f"{args.fail_next} requests"
        active.append(f"the next {requests} {_describe(args.fail_with)}")
    if args.fail_randomly:
        draws = ", ".join(
            f"{_describe(fault)} {chance:g}" for fault, chance in args.fail_randomly
        )
        seed = "" if args.seed is None else f" (seed {args.seed})"
        active.append(f"at random {draws}{seed}")
    if args.outage is not None:
        until = "until stopped" if math.isinf(args.outage) else f"for {args.outage:g}s"
        active.append(f"outage {_describe(args.fail_with)} {until}")
    if args.reject_event:
        active.append("rejecting events " + ", ".join(args.reject_event))
    if args.latency:
        active.append(f"latency {args.latency:g}s")
    if not active:
        return "faults: none"
    return "faults: " + "; ".join(active) + " (SIGHUP clears them)"


def _configure(fake: FakeConversionsAPI, args: argparse.Namespace) -> None:
    timing: dict[str, Any] = {"retry_after": args.retry_after, "seconds": args.delay}
    if args.reject_event:
        fake.reject_events(args.reject_event)
    if args.fail_next:
        fake.fail_next(args.fail_with, args.fail_next, **timing)
    if args.fail_randomly:
        fake.fail_randomly(dict(args.fail_randomly), seed=args.seed, **timing)
    if args.outage is not None:
        fake.outage(args.fail_with, **timing)


def main(argv: Sequence[str] | None = None) -> int:
    command = parser()
    args = command.parse_args(argv)
    kinds = [fault for fault, _ in args.fail_randomly]
    twice = sorted({str(fault) for fault in kinds if kinds.count(fault) > 1})
    if twice:
        # One chance per fault: the fake keeps the last, and the sum and the
        # start-up line would count both.
        command.error(
            f"--fail-randomly: {', '.join(twice)} given more than once; give each "
            "fault one chance"
        )
    total = math.fsum(chance for _, chance in args.fail_randomly)
    if over_one(total):
        command.error(f"--fail-randomly: the chances sum to {total:g}, more than 1")
    if args.fail_with is None:
        args.fail_with = "server_error"
    elif not args.fail_next and args.outage is None:
        command.error("--fail-with: says what --fail-next or --outage answer; give one")
    lock = threading.Lock()

    def say(line: str) -> None:
        with lock:
            print(line, flush=True)

    def report(request: RecordedRequest) -> None:
        # Never the key: only what identifies the request.
        say(
            f"{request.status or 'dropped'} pid={request.pixel or '-'} "
            f"events={request.event_count} {request.request_id}"
        )

    fake = FakeConversionsAPI(
        args.api_key,
        args.pixel or ["test-pixel"],
        unscoped_keys=args.unscoped_key,
        latency=args.latency,
        on_request=report,
    )
    _configure(fake, args)
    outage_end: threading.Timer | None = None
    if args.outage is not None and not math.isinf(args.outage):
        outage_end = _after(args.outage, lambda: _end_outage(fake, say))

    def cleared() -> None:
        if outage_end is not None:
            # Else it would announce, later, the end of an outage SIGHUP ended.
            outage_end.cancel()
        fake.clear_faults()
        fake.latency = 0.0
        say("faults: cleared by SIGHUP; answering normally")

    def clear(signum: int, frame: FrameType | None) -> None:
        # In a thread of its own: the handler runs in the main thread, which may be
        # inside say() already, holding the lock that this say() would wait on forever.
        threading.Thread(target=cleared, daemon=True).start()

    handlers: dict[int, Callable[[int, FrameType | None], None]] = {
        signal.SIGINT: _stop,
        signal.SIGTERM: _stop,
    }
    # Windows has no SIGHUP: there the fake runs with its faults until restarted.
    hangup = getattr(signal, "SIGHUP", None)
    if hangup is not None:
        handlers[hangup] = clear
    previous = {signum: signal.signal(signum, h) for signum, h in handlers.items()}
    try:
        try:
            fake.start(args.host, args.port, verbose=args.verbose)
        except OSError as exc:
            # The port taken (a fake already running), or an address this machine
            # does not have: one line, not a traceback.
            print(
                f"{command.prog}: cannot listen on {args.host}:{args.port}: "
                + (exc.strerror or str(exc)),
                file=sys.stderr,
            )
            return 1
        announce(fake.url, args, say)
        if outage_end is not None:
            outage_end.start()
        threading.Event().wait()
    except _Stop:
        pass
    finally:
        if outage_end is not None:
            outage_end.cancel()
        fake.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0


def announce(url: str, args: argparse.Namespace, say: Callable[[str], None]) -> None:
    """The first two lines: the URL, then the active faults."""
    # The URL comes first and alone, so that a caller of --port 0 can read it.
    say(url)
    say(describe_faults(args))


def _after(seconds: float, action: Callable[[], None]) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.daemon = True
    return timer


def _end_outage(fake: FakeConversionsAPI, say: Callable[[str], None]) -> None:
    fake.outage(None)
    say("faults: the outage is over; answering normally")
