"""The HTTP transport of the fake: a threaded server on loopback."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from django_openai_capi.testing.wire import Reset, Serves


class _Handler(BaseHTTPRequestHandler):
    # Keep-alive: clients with a requests.Session reuse one connection for many batches.
    protocol_version = "HTTP/1.1"
    # An answer goes out as two writes, headers then body; with Nagle's algorithm the
    # body would wait for the client's delayed ACK, 40 ms on Linux, on every request.
    disable_nagle_algorithm = True
    server: _Server

    def _serve(self) -> None:
        body = self._read_body()
        response = self.server.fake.serve(
            self.command, self.path, dict(self.headers.items()), body
        )
        if response is None:
            self.close_connection = True
            return
        if isinstance(response, Reset):
            # SO_LINGER with a zero timeout: close() sends RST, not FIN.
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            self.server.to_reset.add(self.connection)
            self.close_connection = True
            return
        if response.delay:
            time.sleep(response.delay)
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = _serve

    def _read_body(self) -> bytes:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            length = -1
        if length < 0:
            # Without a length neither the body nor the next request can be found.
            self.close_connection = True
            return b""
        return self.rfile.read(length)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], fake: Serves, *, verbose: bool
    ) -> None:
        super().__init__(address, _Handler)
        self.fake = fake
        self.verbose = verbose
        self.connections: set[socket.socket] = set()
        #: Connections of a ``reset`` fault: closed without the FIN of a shutdown.
        self.to_reset: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    # Connections are tracked so that stop() can close the kept-alive ones: otherwise
    # their threads would go on answering after the server "stopped".
    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
            reset = request in self.to_reset
            self.to_reset.discard(request)
        if reset:
            self.close_request(request)
            return
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def server_bind(self) -> None:
        # HTTPServer.server_bind also looks the host up in DNS (getfqdn), which can
        # take seconds on a machine without a resolver; loopback needs no name.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.socket.getsockname()[:2]

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and hung up is expected, not worth a traceback.
        if self.verbose:
            super().handle_error(request, client_address)


class FakeServer:
    def __init__(self, fake: Serves, host: str, port: int, *, verbose: bool) -> None:
        self._server = _Server((host, port), fake, verbose=verbose)
        self.url = (
            f"http://{self._server.server_name}:{self._server.server_port}/v1/events"
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-conversions-api",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self._thread.join()
