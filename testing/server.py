"""A real, scripted OpenAI-compatible HTTP server on 127.0.0.1, for testing LM pipelines.

.. code-block:: python

    with OpenAICompatServer(replies=["Paris", Reply(status=429, headers={"Retry-After": "0"})]) as server:
        lm = LM("openai/test", base_url=server.base_url, api_key="sk-test")
        ...
        assert server.requests[0].json["messages"][0]["role"] == "system"

The server runs in a daemon thread, answers ``POST /v1/chat/completions`` (and
``/chat/completions``) over HTTP/1.1 with keep-alive, records every request, and shuts
itself down after ``max_lifetime`` seconds in case a test forgets to stop it.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["OpenAICompatServer", "RecordedRequest", "Reply", "Responder"]

CHAT_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})


@dataclass(frozen=True)
class Reply:
    """One scripted answer.

    By default a successful chat completion whose message content is ``content``
    (``None`` sends a JSON ``null`` content). With a non-2xx ``status`` the body is an
    OpenAI-style error object carrying ``error_message``. ``body`` replaces the whole
    body: ``str``/``bytes`` are sent as they are, anything else as JSON. ``delay``
    seconds pass before the answer is sent (to test latency and timeouts).
    """

    content: str | None = ""
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str | bytes | dict[str, Any] | list[Any] | None = None
    delay: float = 0.0
    finish_reason: str = "stop"
    error_message: str | None = None


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the server received it."""

    method: str
    path: str
    #: header names in lower case
    headers: dict[str, str]
    #: the parsed JSON body (``None`` if it was not JSON)
    json: Any
    #: the raw body
    body: bytes
    #: which TCP connection carried it (numbered from 1 in order of acceptance)
    connection: int

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The chat messages of the request (empty if there are none)."""
        if isinstance(self.json, dict) and isinstance(self.json.get("messages"), list):
            return list(self.json["messages"])
        return []


#: computes the reply to a request from the request itself
Responder = Callable[[RecordedRequest], "str | Reply"]


class OpenAICompatServer:
    """A scripted chat-completions server on ``127.0.0.1`` (ephemeral port).

    ``replies`` is either a sequence consumed in order (``str`` items are the content of
    successful completions, :class:`Reply` items anything else) or a responder callable
    that computes each reply from the :class:`RecordedRequest`. Once a sequence is used
    up, ``default`` answers (by default: HTTP 500 saying the script ran out).

    Start and stop it with ``with``, or with :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        replies: Iterable[str | Reply] | Responder = (),
        *,
        default: str | Reply | None = None,
        max_lifetime: float | None = 120.0,
    ) -> None:
        self._responder: Responder | None = None
        self._script: deque[str | Reply] = deque()
        if callable(replies):
            self._responder = replies
        else:
            self._script.extend(replies)
        self._scripted_count = len(self._script)
        self.default = default
        self.max_lifetime = max_lifetime
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._errors: list[BaseException] = []
        self._connections = 0
        self._open_sockets: set[socket.socket] = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None
        self._stopped = threading.Event()  # set as soon as stopping begins
        self._closed = threading.Event()  # set once the port is closed
        self._started = False

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> OpenAICompatServer:
        """Bind to 127.0.0.1 on a free port and serve in a daemon thread."""
        with self._lock:
            if self._started or self._stopped.is_set():
                raise RuntimeError("this server was already started (or stopped); make a new one")
            self._started = True
            httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
            httpd.owner = self
            self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.02},  # how quickly stop() takes effect
            name=f"OpenAICompatServer:{self.port}",
            daemon=True,
        )
        self._thread.start()
        if self.max_lifetime is not None:
            # The safety net: stop even if the test never does.
            self._timer = threading.Timer(self.max_lifetime, self.stop)
            self._timer.daemon = True
            self._timer.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every connection. Safe to call more than once."""
        with self._lock:
            if self._stopped.is_set() or self._httpd is None:
                if self._httpd is None and not self._stopped.is_set():  # never started
                    self._stopped.set()
                    self._closed.set()
                return
            self._stopped.set()  # also cuts scripted delays short
            httpd, self._httpd = self._httpd, None
            sockets = list(self._open_sockets)
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.cancel()
        httpd.shutdown()
        httpd.server_close()
        # Keep-alive connections would otherwise keep their handler threads waiting.
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        self._closed.set()

    @property
    def running(self) -> bool:
        return self._started and not self._stopped.is_set()

    def wait_stopped(self, timeout: float | None = None) -> bool:
        """Block until the server has stopped and closed its port (or ``timeout`` passes).

        Returns True if it stopped.
        """
        return self._closed.wait(timeout)

    def __enter__(self) -> OpenAICompatServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what tests look at -------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) the server listens on; the host is always ``127.0.0.1``."""
        if self._httpd is None:
            raise RuntimeError("the server is not running")
        host, port = self._httpd.socket.getsockname()[:2]
        return str(host), int(port)

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, for ``LM(base_url=...)``."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in order (a snapshot)."""
        with self._lock:
            return list(self._requests)

    @property
    def connections_opened(self) -> int:
        """How many TCP connections clients have opened (keep-alive reuse keeps it low)."""
        with self._lock:
            return self._connections

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions raised by a responder callable (each was answered with HTTP 500)."""
        with self._lock:
            return list(self._errors)

    @property
    def remaining(self) -> int:
        """Scripted replies not yet used."""
        with self._lock:
            return len(self._script)

    # -- used by the handler --------------------------------------------------------------

    def _connection_opened(self, sock: socket.socket) -> int:
        with self._lock:
            self._connections += 1
            self._open_sockets.add(sock)
            return self._connections

    def _connection_closed(self, sock: socket.socket) -> None:
        with self._lock:
            self._open_sockets.discard(sock)

    def _reply_for(self, request: RecordedRequest) -> Reply:
        """Record ``request`` and pick its reply."""
        with self._lock:
            self._requests.append(request)
            responder = self._responder
            item: str | Reply | None = None
            if responder is None:
                item = self._script.popleft() if self._script else None
        if responder is not None:
            try:
                item = responder(request)
            except Exception as exc:
                with self._lock:
                    self._errors.append(exc)
                return Reply(
                    status=500, error_message=f"responder raised {type(exc).__name__}: {exc}"
                )
        if item is None:
            item = self.default
        if item is None:
            return Reply(
                status=500,
                error_message=(
                    f"OpenAICompatServer: the script ran out: all {self._scripted_count} "
                    f"scripted replies were used; this is request {len(self.requests)}"
                ),
            )
        return Reply(content=item) if isinstance(item, str) else item

    def _delay(self, seconds: float) -> None:
        if seconds > 0:
            self._stopped.wait(seconds)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    owner: OpenAICompatServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out and hang up are expected in tests; stay quiet about them.
        import sys

        if isinstance(sys.exc_info()[1], OSError):  # includes resets and timeouts
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer
    # Headers and body go out in separate writes; with Nagle's algorithm on, the body
    # would wait for the client's delayed ACK (~40 ms per response).
    disable_nagle_algorithm = True
    # An idle keep-alive connection is dropped after this many seconds.
    timeout = 30.0

    def setup(self) -> None:
        super().setup()
        self.connection_number = self.server.owner._connection_opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._connection_closed(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def do_GET(self) -> None:
        self._send_json(404, _error_body(f"no route for GET {self.path}", "not_found"))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        path = self.path.split("?", 1)[0]
        request = RecordedRequest(
            method="POST",
            path=path,
            headers={name.lower(): value for name, value in self.headers.items()},
            json=parsed,
            body=raw,
            connection=self.connection_number,
        )
        if path not in CHAT_PATHS:
            self._send_json(404, _error_body(f"no route for POST {path}", "not_found"))
            return
        if not isinstance(parsed, dict) or not isinstance(parsed.get("messages"), list):
            self._send_json(
                400, _error_body("the body must be JSON with a 'messages' list", "invalid_request")
            )
            return
        owner = self.server.owner
        reply = owner._reply_for(request)
        owner._delay(reply.delay)
        self._send_reply(reply, parsed)

    def _send_reply(self, reply: Reply, request: dict[str, Any]) -> None:
        if reply.body is not None:
            body = reply.body
            if isinstance(body, str):
                payload = body.encode("utf-8")
            elif isinstance(body, bytes):
                payload = body
            else:
                payload = json.dumps(body).encode("utf-8")
            self._send(reply.status, payload, reply.headers)
        elif 200 <= reply.status < 300:
            self._send_json(reply.status, _completion_body(reply, request), reply.headers)
        else:
            message = reply.error_message or f"scripted error (HTTP {reply.status})"
            self._send_json(
                reply.status, _error_body(message, _error_type(reply.status)), reply.headers
            )

    def _send_json(
        self, status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        self._send(status, json.dumps(body).encode("utf-8"), headers or {}, "application/json")

    def _send(
        self,
        status: int,
        payload: bytes,
        headers: Mapping[str, str],
        content_type: str = "application/json",
    ) -> None:
        try:
            self.send_response(status)
            names = {name.lower() for name in headers}
            if "content-type" not in names:
                self.send_header("Content-Type", content_type)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            # The client gave up (e.g. it timed out during a scripted delay).
            self.close_connection = True


def _rough_tokens(text: str) -> int:
    """A rough token count: the number of words."""
    return len(text.split())


def _completion_body(reply: Reply, request: dict[str, Any]) -> dict[str, Any]:
    prompt = " ".join(
        str(message.get("content") or "")
        for message in request.get("messages", [])
        if isinstance(message, dict)
    )
    completion_tokens = _rough_tokens(reply.content or "")
    prompt_tokens = _rough_tokens(prompt)
    return {
        "id": f"chatcmpl-sigforge-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": str(request.get("model", "")),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.content},
                "finish_reason": reply.finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _error_type(status: int) -> str:
    if status == 429:
        return "rate_limit_exceeded"
    if status in (401, 403):
        return "authentication_error"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


def _error_body(message: str, error_type: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": None, "code": None}}
