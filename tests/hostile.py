"""A loopback HTTP server that misbehaves on purpose: it drips, floods, stalls, lies.

Each request is answered by a *script*, a function that writes whatever it likes to a
:class:`Wire`. The server counts the bytes its scripts managed to write: the kernel
buffers between the two ends are small (the server's send buffer is pinned), so that
count bounds what the client read, without timing anything.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import NoReturn, Self

#: The server's send buffer: small, so that a client that stops reading stops the
#: server's writes soon after (the kernel would otherwise buffer megabytes).
SEND_BUFFER = 64 * 1024


class ClientGone(Exception):
    """The client closed or reset the connection: the script stops writing."""


class Wire:
    """One connection, as a script sees it."""

    def __init__(self, sock: socket.socket, server: HostileServer) -> None:
        self._sock = sock
        self._server = server
        #: The head (request line and headers) of the request being answered.
        self.last_request = b""

    def send(self, data: bytes) -> None:
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise ClientGone from exc
        self._server.count(len(data))

    def drip(self, data: bytes, *, every: float) -> None:
        """Send *data* one byte at a time, *every* seconds apart."""
        for index in range(len(data)):
            self.send(data[index : index + 1])
            if self._server.stopping.wait(every):
                raise ClientGone

    def flood(self, total: int | None, *, block: bytes = b"x" * 65536) -> None:
        """Send *total* bytes of *block* as fast as the client takes them (None: forever)."""
        sent = 0
        while total is None or sent < total:
            piece = block if total is None else block[: total - sent]
            self.send(piece)
            sent += len(piece)

    def hold(self) -> NoReturn:
        """Send nothing until the client hangs up or the server stops."""
        self._sock.settimeout(0.05)
        while not self._server.stopping.is_set():
            try:
                if not self._sock.recv(65536):
                    raise ClientGone
            except TimeoutError:
                continue
            except OSError as exc:
                raise ClientGone from exc
        raise ClientGone


#: Answers one request; returns True to keep the connection for the next one.
Script = Callable[[Wire], bool]


def answer(
    status: int = 200,
    body: bytes = b"{}",
    *,
    headers: dict[str, str] | None = None,
    raw_headers: bytes = b"",
) -> Script:
    """A well-formed answer with a Content-Length, kept alive.

    *raw_headers* are header lines sent as they are (``b"x-request-id: a\\x00b\\r\\n"``),
    for what no well-behaved server would send.
    """

    def script(wire: Wire) -> bool:
        lines = head(status, {"Content-Length": str(len(body)), **(headers or {})})
        wire.send(lines[:-2] + raw_headers + b"\r\n" + body)
        return True

    return script


def silent(wire: Wire) -> bool:
    """Answer nothing, ever."""
    wire.hold()


def head(status: int, headers: dict[str, str]) -> bytes:
    """A status line and headers, ending with the blank line."""
    lines = [f"HTTP/1.1 {status} Status"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class HostileServer:
    """A threaded loopback server running *script* for every request it reads.

    With ``read_request=False`` it reads nothing at all, so a client's send blocks
    once the kernel buffers are full.
    """

    def __init__(
        self,
        script: Script,
        *,
        read_request: bool = True,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.script = script
        self.read_request = read_request
        self.tls = tls
        self.stopping = threading.Event()
        self.connections = 0
        self.requests = 0
        self.written = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        # Closing a socket does not wake a thread blocked in its accept(): poll.
        self._listener.settimeout(0.05)
        self._open: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        port = self._listener.getsockname()[1]
        scheme = "http" if tls is None else "https"
        self.url = f"{scheme}://127.0.0.1:{port}/v1/events"

    def count(self, written: int) -> None:
        with self._lock:
            self.written += written

    def __enter__(self) -> Self:
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stopping.set()
        self._listener.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):  # already closed by its thread
                    sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=5)

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:  # the listener was closed: the server is stopping
                return
            sock.settimeout(None)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
            with self._lock:
                self.connections += 1
                self._open.add(sock)
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, raw: socket.socket) -> None:
        sock = raw
        try:
            if self.tls is not None:
                sock = self.tls.wrap_socket(raw, server_side=True)
                with self._lock:  # the socket __exit__ shuts down is the TLS one now
                    self._open.discard(raw)
                    self._open.add(sock)
            wire = Wire(sock, self)
            for request in self._requests(sock):
                wire.last_request = request
                with self._lock:
                    self.requests += 1
                if not self.script(wire):
                    break
        except (ClientGone, OSError):  # OSError: a handshake the client gave up
            pass
        finally:
            with self._lock:
                self._open.discard(raw)
                self._open.discard(sock)
            sock.close()

    def _requests(self, sock: socket.socket) -> Iterator[bytes]:
        if not self.read_request:
            yield b""
            return
        buffer = b""
        while not self.stopping.is_set():
            while b"\r\n\r\n" not in buffer:
                chunk = _recv(sock)
                if not chunk:
                    return
                buffer += chunk
            header, _, buffer = buffer.partition(b"\r\n\r\n")
            length = _content_length(header)
            while len(buffer) < length:
                chunk = _recv(sock)
                if not chunk:
                    return
                buffer += chunk
            buffer = buffer[length:]
            yield header + b"\r\n"


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(1 << 20)
    except OSError:
        return b""


def _content_length(header: bytes) -> int:
    for line in header.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def elapsed(since: float) -> float:
    return time.monotonic() - since
