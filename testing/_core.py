"""The machinery shared by the scripted provider servers (use the servers, not this module).

One :class:`ScriptedServer` does everything that does not depend on the provider: a
threading HTTP/1.1 server bound to 127.0.0.1 with keep-alive, start/stop and the
``max_lifetime`` safety timer, request recording, scripted replies and responder
callables, delays, outages (:meth:`ScriptedServer.take_down`), server-sent events over
chunked transfer encoding (with breaks, error events and garbage mid-stream), and
connection and CPU accounting. Everything that is the provider's own -- its routes, what
a valid request is, the bodies and stream events it answers with, the shape of its
errors -- lives in a :class:`Dialect`. Each public server is ``ScriptedServer`` plus one
dialect:

* :class:`~sigforge.testing.server.OpenAICompatServer` -- OpenAI chat completions
* :class:`~sigforge.testing.anthropic.AnthropicServer` -- Anthropic Messages
* :class:`~sigforge.testing.gemini.GeminiServer` -- Gemini ``generateContent``

How one request is served:

1. The request is read and recorded (:class:`RecordedRequest`, in arrival order).
2. The dialect finds its route and checks it against the provider's documented format.
   Violations are recorded in ``server.violations`` and answered with the provider's
   error (400, or the provider's status for a missing API key); they use no script item.
3. While the server is down (:meth:`ScriptedServer.take_down`) the outage reply answers.
4. Otherwise the next scripted item (or the responder's result) is the :class:`Reply`:
   after its ``delay`` it becomes an error body, a raw body, a dropped connection, a
   completion, or -- when the request asked to stream -- a stream of events.

Replies speak one neutral vocabulary: ``finish_reason`` is OpenAI's (``"stop"``,
``"length"``, ``"content_filter"``; each dialect translates these and passes any other
value through as the provider's own), errors are chosen by HTTP ``status`` (or
``error_type``, in the provider's own words).
"""

from __future__ import annotations

import abc
import contextlib
import json
import re
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

from ._checks import Problem, Problems

__all__ = [
    "NOT_JSON",
    "Answer",
    "Dialect",
    "Event",
    "Inspection",
    "RecordedRequest",
    "Reply",
    "Responder",
    "Route",
    "ScriptedServer",
    "ServerStats",
    "rough_tokens",
]

# -- what tests script and see -------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """One scripted answer, in any provider's server.

    By default a successful completion whose text is ``content`` (``None``: no text at
    all -- a JSON ``null`` for OpenAI, no content block for Anthropic, no content for
    Gemini). ``finish_reason`` uses OpenAI's words; ``"stop"``, ``"length"`` and
    ``"content_filter"`` become ``end_turn``/``max_tokens``/``refusal`` for Anthropic and
    ``STOP``/``MAX_TOKENS``/``SAFETY`` for Gemini, other values are sent as they are.
    ``stop_sequence`` is Anthropic's matched stop sequence. ``prompt_tokens`` /
    ``completion_tokens`` replace the usage the server counts (words).

    With a non-2xx ``status`` the body is the provider's error object carrying
    ``error_message``; ``error_type`` overrides the provider's error type (e.g.
    ``"overloaded_error"``), ``retry_after`` adds the provider's way of saying when to
    retry (a ``retry-after`` header; Gemini: a ``RetryInfo`` detail). ``body`` replaces
    the whole body: ``str``/``bytes`` are sent as they are, anything else as JSON.
    ``delay`` seconds pass before the answer. ``disconnect`` closes the connection
    instead of answering.

    Streaming (only for requests that ask to stream): the text goes out in ``chunks``
    (explicit pieces; ``content`` defaults to their concatenation), else in pieces of
    ``chunk_size`` characters, else one piece per word (with the whitespace after it).
    ``chunk_delay`` seconds pass before each piece (a number for all, or one per piece).
    ``break_after`` pieces are sent and then the stream breaks: by default the
    connection is dropped without finishing the response; with ``stream_error`` the
    provider's error event carrying that message is sent instead, with
    ``stream_garbage`` that raw text (to test malformed events); either ends the stream
    properly. ``stream_error``/``stream_garbage`` without ``break_after`` come after
    the last piece, instead of the finish.
    """

    content: str | None = ""
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str | bytes | dict[str, Any] | list[Any] | None = None
    delay: float = 0.0
    finish_reason: str = "stop"
    error_message: str | None = None
    error_type: str | None = None
    retry_after: float | None = None
    stop_sequence: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    disconnect: bool = False
    chunks: Sequence[str] | None = None
    chunk_size: int | None = None
    chunk_delay: float | Sequence[float] = 0.0
    break_after: int | None = None
    stream_error: str | None = None
    stream_garbage: str | None = None

    def __post_init__(self) -> None:
        if self.chunks is not None:
            chunks = tuple(self.chunks)
            object.__setattr__(self, "chunks", chunks)
            joined = "".join(chunks)
            if self.content == "":
                object.__setattr__(self, "content", joined)
            elif self.content != joined and not (self.content is None and not joined):
                raise ValueError("Reply: content differs from the concatenated chunks")
        if self.chunk_size is not None and self.chunk_size < 1:
            raise ValueError("Reply: chunk_size must be at least 1")
        if self.break_after is not None and self.break_after < 0:
            raise ValueError("Reply: break_after must be >= 0")
        if not isinstance(self.chunk_delay, int | float):
            object.__setattr__(self, "chunk_delay", tuple(self.chunk_delay))

    def pieces(self) -> list[str]:
        """The pieces a stream sends the text in (they concatenate to ``content``)."""
        if self.chunks is not None:
            return list(self.chunks)
        text = self.content or ""
        if not text:
            return []
        if self.chunk_size is not None:
            size = self.chunk_size
            return [text[start : start + size] for start in range(0, len(text), size)]
        return re.findall(r"\s*\S+\s*|\s+", text)

    def delay_before(self, index: int) -> float:
        """Seconds to wait before stream piece ``index`` (0-based)."""
        delays = self.chunk_delay
        if isinstance(delays, int | float):
            return float(delays)
        return float(delays[index]) if index < len(delays) else 0.0

    @property
    def breaks(self) -> bool:
        """Whether a stream of this reply ends other than with a normal finish."""
        return (
            self.break_after is not None
            or self.stream_error is not None
            or self.stream_garbage is not None
        )


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
    #: the query parameters (the last value of each)
    query: dict[str, str] = field(default_factory=dict)
    #: whether the client asked for a stream
    stream: bool = False
    #: the model asked for (from the body, or Gemini's path)
    model: str | None = None
    #: the text of the prompt, in order: system text first, then each message's text
    texts: tuple[str, ...] = ()
    #: the wire-format violations found in this request (empty if it was valid)
    violations: tuple[str, ...] = ()
    #: its place among all the requests the server received (from 1)
    number: int = 0

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The chat messages of the request (empty if there are none; Gemini has none)."""
        if isinstance(self.json, dict) and isinstance(self.json.get("messages"), list):
            return list(self.json["messages"])
        return []

    @property
    def last_text(self) -> str:
        """The text of the last message (``""`` if there is none): handy in responders."""
        return self.texts[-1] if self.texts else ""


#: computes the reply to a request from the request itself
Responder = Callable[[RecordedRequest], "str | Reply"]


@dataclass(frozen=True)
class ServerStats:
    """What a server did, for tests and benchmarks."""

    #: requests received (valid or not)
    requests: int
    #: requests answered as a stream
    streams: int
    #: requests that broke the wire format
    violations: int
    #: requests answered by the outage reply while the server was down
    outage_answers: int
    connections_opened: int
    #: CPU time the server's threads spent handling requests (``time.thread_time``),
    #: waiting excluded
    cpu_seconds: float

    @property
    def cpu_per_request(self) -> float:
        """Mean server CPU seconds per request (0 before the first request)."""
        return self.cpu_seconds / self.requests if self.requests else 0.0


# -- what a dialect provides ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Route:
    """An endpoint a dialect serves: whether it streams by itself, and any model in the path."""

    name: str
    #: ``True``/``False`` when the endpoint decides; ``None`` when the body does
    stream: bool | None = None
    model: str | None = None


@dataclass(slots=True)
class Inspection:
    """What a dialect learned from checking one request."""

    problems: Problems
    stream: bool = False
    model: str | None = None
    texts: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Event:
    """One server-sent event: an optional ``event:`` name and its ``data`` text."""

    data: str
    name: str | None = None


@dataclass(frozen=True)
class Answer:
    """One reply being given to one request: what every body and event is built from."""

    reply: Reply
    request: RecordedRequest
    #: a fresh id for this answer (the dialect adds its prefix)
    id: str
    #: when it was made (Unix seconds)
    created: int
    prompt_tokens: int
    completion_tokens: int

    @property
    def model(self) -> str:
        return self.request.model or ""


def rough_tokens(text: str) -> int:
    """A rough token count: the number of words."""
    return len(text.split())


class Dialect(abc.ABC):
    """A provider's side of the conversation: routes, checks, bodies, events, errors."""

    #: a short name ("openai", "anthropic", "gemini")
    name: str = ""
    #: what ``base_url`` adds to ``http://127.0.0.1:PORT``
    base_path: str = ""
    #: the line ending of its server-sent events
    line_end: str = "\n"
    #: the Content-Type of its streams
    stream_content_type: str = "text/event-stream; charset=utf-8"

    def __init__(self, *, api_key: str | None = None) -> None:
        #: when set, requests carrying another key are refused
        self.api_key = api_key

    @abc.abstractmethod
    def route(self, method: str, path: str, query: Mapping[str, str]) -> Route | None:
        """The endpoint for this method and path (``None``: there is none)."""

    @abc.abstractmethod
    def inspect(
        self, route: Route, headers: Mapping[str, str], query: Mapping[str, str], body: Any
    ) -> Inspection:
        """Check a request against the provider's format.

        ``body`` is the parsed JSON body, or :data:`NOT_JSON` when there was no body or
        it was not JSON.
        """

    @abc.abstractmethod
    def completion(self, answer: Answer) -> Any:
        """The JSON body of a successful, non-streamed answer."""

    @abc.abstractmethod
    def stream_head(self, answer: Answer) -> list[Event]:
        """The events before the first piece of text."""

    @abc.abstractmethod
    def stream_piece(self, answer: Answer, piece: str, index: int) -> Event:
        """The event carrying one piece of text."""

    @abc.abstractmethod
    def stream_tail(self, answer: Answer) -> list[Event]:
        """The events after the last piece of text (the finish, usage, an end marker)."""

    @abc.abstractmethod
    def error_type(self, status: int) -> str:
        """The provider's error type (or status name) for an HTTP status."""

    @abc.abstractmethod
    def error_body(
        self, status: int, message: str, error_type: str, retry_after: float | None
    ) -> dict[str, Any]:
        """The provider's error object."""

    def stream_error(self, answer: Answer, status: int, message: str, error_type: str) -> Event:
        """The event that reports an error in the middle of a stream."""
        return Event(json.dumps(self.error_body(status, message, error_type, None)))

    def status_of(self, error_type: str) -> int | None:
        """The HTTP status that goes with ``error_type`` (``None`` if unknown)."""
        for status in (400, 401, 403, 404, 413, 429, 500, 503, 504, 529):
            if self.error_type(status) == error_type:
                return status
        return None

    def error_headers(self, status: int, retry_after: float | None) -> dict[str, str]:
        """Headers that go with an error (by default ``retry-after`` when it is given)."""
        return {} if retry_after is None else {"retry-after": f"{retry_after:g}"}

    def stream_array(self, route: Route, query: Mapping[str, str]) -> bool:
        """Whether this stream is a JSON array of chunks instead of server-sent events."""
        return False

    def new_id(self) -> str:
        return uuid.uuid4().hex[:24]

    def json_object(
        self, headers: Mapping[str, str], body: Any, problems: Problems
    ) -> dict[str, Any] | None:
        """The body as a JSON object, after checking it is one and says so in its
        Content-Type; ``None`` (with the problem reported) when it is not."""
        content_type = headers.get("content-type", "")
        if not content_type:
            problems.add("content-type: header is required (application/json)")
        elif content_type.split(";", 1)[0].strip().lower() != "application/json":
            problems.add(f"content-type: expected application/json, got {content_type!r}")
        if body is NOT_JSON:
            problems.add("the body is not valid JSON")
            return None
        if not isinstance(body, dict):
            problems.add("the body must be a JSON object")
            return None
        return body


#: what ``Dialect.inspect`` gets as the body of a request that is not JSON
NOT_JSON: Any = object()


# -- the server ------------------------------------------------------------------------------


class ScriptedServer:
    """A scripted provider server on ``127.0.0.1`` (ephemeral port), for one dialect.

    ``replies`` is either a sequence consumed in order (``str`` items are the text of
    successful completions, :class:`Reply` items anything else) or a responder callable
    that computes each reply from the :class:`RecordedRequest`. Once a sequence is used
    up, ``default`` answers (by default: HTTP 500 saying the script ran out). The
    ``dialect`` decides everything that is the provider's own (the public servers pass
    theirs, with the ``api_key`` they are given). The server stops itself
    ``max_lifetime`` seconds after starting (``None``: never).

    Start and stop it with ``with``, or with :meth:`start` / :meth:`stop`.
    """

    dialect: Dialect

    def __init__(
        self,
        replies: Iterable[str | Reply] | Responder = (),
        *,
        dialect: Dialect,
        default: str | Reply | None = None,
        max_lifetime: float | None = 120.0,
    ) -> None:
        self.dialect = dialect
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
        self._violations: list[str] = []
        self._errors: list[BaseException] = []
        self._connections = 0
        self._streams = 0
        self._outage_answers = 0
        self._cpu = 0.0
        self._open_sockets: set[socket.socket] = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None
        self._port: int | None = None
        self._outage: Reply | None = None  # while down and answering
        self._refusing = False  # while down and refusing connections
        self._stopped = threading.Event()  # set as soon as stopping begins
        self._closed = threading.Event()  # set once the port is closed
        self._started = False

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> Self:
        """Bind to 127.0.0.1 on a free port and serve in a daemon thread."""
        with self._lock:
            if self._started or self._stopped.is_set():
                raise RuntimeError("this server was already started (or stopped); make a new one")
            self._started = True
            httpd = self._listen(0)
            self._port = int(httpd.socket.getsockname()[1])
        self._serve(httpd)
        if self.max_lifetime is not None:
            # The safety net: stop even if the test never does.
            self._timer = threading.Timer(self.max_lifetime, self.stop)
            self._timer.daemon = True
            self._timer.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every connection. Safe to call more than once."""
        with self._lock:
            if self._stopped.is_set():
                return
            self._stopped.set()  # also cuts scripted delays short
            if not self._started:
                self._closed.set()
                return
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.cancel()
        self._close_listener()
        self._closed.set()

    @property
    def running(self) -> bool:
        """Started and not yet stopped (a server that is down is still running)."""
        return self._started and not self._stopped.is_set()

    def wait_stopped(self, timeout: float | None = None) -> bool:
        """Block until the server has stopped and closed its port (or ``timeout`` passes).

        Returns True if it stopped.
        """
        return self._closed.wait(timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- outages -------------------------------------------------------------------------------

    def take_down(self, *, refuse: bool = False, reply: str | Reply | None = None) -> None:
        """Make the server fail until :meth:`bring_up`, for circuit-breaker tests.

        By default every request is still recorded and checked, then answered with
        ``reply`` (default: HTTP 503 in the provider's error format). With
        ``refuse=True`` the port is closed instead, together with every open
        connection: new connections are refused. The port stays the server's.
        """
        if not self.running:
            raise RuntimeError("the server is not running")
        if refuse:
            with self._lock:
                self._outage = None
                self._refusing = True
            self._close_listener()
            return
        if reply is None:
            reply = Reply(status=503, error_message="the service is down (scripted outage)")
        with self._lock:
            self._outage = Reply(content=reply) if isinstance(reply, str) else reply
        if self._refusing:  # from refusing to answering
            self._reopen()

    def bring_up(self) -> None:
        """End an outage begun by :meth:`take_down` (the same port serves again)."""
        if not self.running:
            raise RuntimeError("the server is not running")
        with self._lock:
            self._outage = None
        if self._refusing:
            self._reopen()

    @contextlib.contextmanager
    def outage(self, *, refuse: bool = False, reply: str | Reply | None = None) -> Iterator[None]:
        """``with server.outage(): ...`` -- :meth:`take_down`, then :meth:`bring_up`."""
        self.take_down(refuse=refuse, reply=reply)
        try:
            yield
        finally:
            if self.running:
                self.bring_up()

    @property
    def is_down(self) -> bool:
        with self._lock:
            return self._refusing or self._outage is not None

    # -- what tests look at -------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) the server listens on; the host is always ``127.0.0.1``."""
        if self._port is None or self._stopped.is_set():
            raise RuntimeError("the server is not running")
        httpd = self._httpd
        if httpd is None:  # down, refusing connections: the port stays reserved for it
            return "127.0.0.1", self._port
        host, port = httpd.socket.getsockname()[:2]
        return str(host), int(port)

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def base_url(self) -> str:
        """The URL a client of this provider is configured with."""
        return f"http://127.0.0.1:{self.port}{self.dialect.base_path}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in order (a snapshot)."""
        with self._lock:
            return list(self._requests)

    @property
    def violations(self) -> list[str]:
        """Every wire-format violation found so far, each naming its request, in order."""
        with self._lock:
            return list(self._violations)

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

    @property
    def cpu_seconds(self) -> float:
        """CPU time spent handling requests so far (see :class:`ServerStats`)."""
        with self._lock:
            return self._cpu

    def stats(self) -> ServerStats:
        """Counts and CPU time so far."""
        with self._lock:
            return ServerStats(
                requests=len(self._requests),
                streams=self._streams,
                violations=sum(1 for request in self._requests if request.violations),
                outage_answers=self._outage_answers,
                connections_opened=self._connections,
                cpu_seconds=self._cpu,
            )

    def add_replies(self, *items: str | Reply) -> None:
        """Append items to the script."""
        with self._lock:
            self._script.extend(items)
            self._scripted_count += len(items)

    # -- internals ----------------------------------------------------------------------------

    def _listen(self, port: int) -> _HTTPServer:
        httpd = _HTTPServer(("127.0.0.1", port), _Handler)
        httpd.owner = self
        self._httpd = httpd
        return httpd

    def _serve(self, httpd: _HTTPServer) -> None:
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.02},  # how quickly stop() takes effect
            name=f"{type(self).__name__}:{self._port}",
            daemon=True,
        )
        self._thread.start()

    def _reopen(self) -> None:
        with self._lock:
            if not self._refusing or self._stopped.is_set():
                return
            assert self._port is not None
            httpd = self._listen(self._port)
            self._refusing = False
        self._serve(httpd)

    def _close_listener(self) -> None:
        """Stop accepting, close the port and every open connection."""
        with self._lock:
            httpd, self._httpd = self._httpd, None
            sockets = list(self._open_sockets)
            thread = self._thread
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        # Keep-alive connections would otherwise keep their handler threads waiting.
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)

    def _connection_opened(self, sock: socket.socket) -> int:
        with self._lock:
            self._connections += 1
            self._open_sockets.add(sock)
            return self._connections

    def _connection_closed(self, sock: socket.socket) -> None:
        with self._lock:
            self._open_sockets.discard(sock)

    def _record(self, request: RecordedRequest) -> RecordedRequest:
        """Number and store ``request``; its violations go to the server's list."""
        with self._lock:
            number = len(self._requests) + 1
            request = _replace(request, number=number)
            self._requests.append(request)
            where = f"request {number} ({request.method} {request.path})"
            self._violations.extend(f"{where}: {problem}" for problem in request.violations)
            return request

    def _outage_reply(self) -> Reply | None:
        with self._lock:
            if self._outage is not None:
                self._outage_answers += 1
            return self._outage

    def _reply_for(self, request: RecordedRequest) -> Reply:
        """Pick the reply to a valid ``request``."""
        with self._lock:
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
                    f"{type(self).__name__}: the script ran out: all {self._scripted_count} "
                    f"scripted replies were used; this is request {request.number}"
                ),
            )
        return Reply(content=item) if isinstance(item, str) else item

    def _delay(self, seconds: float) -> None:
        if seconds > 0:
            self._stopped.wait(seconds)

    def _count_stream(self) -> None:
        with self._lock:
            self._streams += 1

    def _add_cpu(self, seconds: float) -> None:
        with self._lock:
            self._cpu += seconds


def _replace(request: RecordedRequest, **changes: Any) -> RecordedRequest:
    import dataclasses

    return dataclasses.replace(request, **changes)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default listen backlog is 5: a client opening dozens of connections
    # at once (a batch with 64 in flight) would see some of them reset.
    request_queue_size = 256
    owner: ScriptedServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out and hang up are expected in tests; stay quiet about them.
        import sys

        if isinstance(sys.exc_info()[1], OSError):  # includes resets and timeouts
            return
        super().handle_error(request, client_address)


class _Dropped(Exception):
    """The connection is gone (the client hung up, or we dropped it on purpose)."""


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
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    # -- one request ------------------------------------------------------------------------

    def handle_one_request(self) -> None:
        # CPU time only: waiting for the next request on a keep-alive connection and
        # scripted delays cost none, parsing the request line and headers is counted.
        started = time.thread_time()
        try:
            super().handle_one_request()
        finally:
            self.server.owner._add_cpu(time.thread_time() - started)

    def _handle(self) -> None:
        try:
            self._serve_request(self.server.owner)
        except _Dropped:
            self.close_connection = True

    def _serve_request(self, owner: ScriptedServer) -> None:
        dialect = owner.dialect
        raw = self._read_body()
        split = urlsplit(self.path)
        path, query = split.path, dict(parse_qsl(split.query, keep_blank_values=True))
        headers = {name.lower(): value for name, value in self.headers.items()}
        body: Any = NOT_JSON
        if raw:
            with contextlib.suppress(ValueError):
                body = json.loads(raw)
        parsed = None if body is NOT_JSON else body
        route = dialect.route(self.command, path, query)
        if route is None:
            problems = Problems()
            problems.add(f"no route for {self.command} {path}", status=404)
            inspection = Inspection(problems)
        else:
            inspection = dialect.inspect(route, headers, query, body)
        request = owner._record(
            RecordedRequest(
                method=self.command,
                path=path,
                headers=headers,
                json=parsed,
                body=raw,
                connection=self.connection_number,
                query=query,
                stream=inspection.stream,
                model=inspection.model,
                texts=tuple(inspection.texts),
                violations=tuple(inspection.problems.violations),
            )
        )
        outage = owner._outage_reply()
        if outage is not None:
            self._answer(owner, outage, request, route)
            return
        if inspection.problems:
            self._refuse(dialect, inspection.problems.items)
            return
        self._answer(owner, owner._reply_for(request), request, route)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _refuse(self, dialect: Dialect, problems: list[Problem]) -> None:
        status = problems[0].status
        message = "; ".join(problem.message for problem in problems if problem.status == status)
        self._send_json(
            status, dialect.error_body(status, message, dialect.error_type(status), None)
        )

    def _answer(
        self, owner: ScriptedServer, reply: Reply, request: RecordedRequest, route: Route | None
    ) -> None:
        dialect = owner.dialect
        owner._delay(reply.delay)
        if owner._stopped.is_set() or reply.disconnect:
            self._drop()
        if reply.body is not None:
            body = reply.body
            if isinstance(body, str):
                payload = body.encode("utf-8")
            elif isinstance(body, bytes):
                payload = body
            else:
                payload = json.dumps(body).encode("utf-8")
            self._send(reply.status, payload, reply.headers)
            return
        if not 200 <= reply.status < 300:
            message = reply.error_message or f"scripted error (HTTP {reply.status})"
            error_type = reply.error_type or dialect.error_type(reply.status)
            body_json = dialect.error_body(reply.status, message, error_type, reply.retry_after)
            headers = _merge(dialect.error_headers(reply.status, reply.retry_after), reply.headers)
            self._send_json(reply.status, body_json, headers)
            return
        text = reply.content or ""
        answer = Answer(
            reply=reply,
            request=request,
            id=dialect.new_id(),
            created=int(time.time()),
            prompt_tokens=(
                reply.prompt_tokens
                if reply.prompt_tokens is not None
                else rough_tokens(" ".join(request.texts))
            ),
            completion_tokens=(
                reply.completion_tokens
                if reply.completion_tokens is not None
                else rough_tokens(text)
            ),
        )
        if request.stream:
            owner._count_stream()
            array = route is not None and dialect.stream_array(route, request.query)
            self._stream(owner, answer, array)
        else:
            self._send_json(reply.status, dialect.completion(answer), reply.headers)

    # -- streams ------------------------------------------------------------------------------

    def _stream(self, owner: ScriptedServer, answer: Answer, array: bool) -> None:
        dialect, reply = owner.dialect, answer.reply
        content_type = "application/json; charset=UTF-8" if array else dialect.stream_content_type
        self._write_head(reply.status, reply.headers, content_type, chunked=True)
        count = 0

        def emit(event: Event) -> None:
            nonlocal count
            if array:
                data = ("[" if count == 0 else ",\r\n") + event.data
            else:
                data = _sse(event, dialect.line_end)
            count += 1
            self._write_chunk(data.encode("utf-8"))

        for event in dialect.stream_head(answer):
            emit(event)
        pieces = reply.pieces()
        stop = len(pieces) if reply.break_after is None else min(reply.break_after, len(pieces))
        for index in range(stop):
            owner._delay(reply.delay_before(index))
            if owner._stopped.is_set():
                self._drop()
            emit(dialect.stream_piece(answer, pieces[index], index))
        if reply.stream_error is not None:
            known = None if reply.error_type is None else dialect.status_of(reply.error_type)
            status = 500 if known is None else known
            error_type = reply.error_type or dialect.error_type(status)
            emit(dialect.stream_error(answer, status, reply.stream_error, error_type))
        elif reply.stream_garbage is not None:
            self._write_chunk(reply.stream_garbage.encode("utf-8"))
        elif reply.break_after is not None:
            self._drop()
        else:
            for event in dialect.stream_tail(answer):
                emit(event)
        if array:
            self._write_chunk(b"]" if count else b"[]")
        self._write(b"0\r\n\r\n")

    # -- writing ------------------------------------------------------------------------------

    def _drop(self) -> None:
        """Hang up without finishing the response."""
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        raise _Dropped

    def _write(self, data: bytes) -> None:
        try:
            self.wfile.write(data)
        except OSError:
            raise _Dropped from None  # the client gave up (e.g. it timed out)

    def _write_chunk(self, data: bytes) -> None:
        if data:
            self._write(b"%x\r\n%s\r\n" % (len(data), data))

    def _write_head(
        self, status: int, headers: Mapping[str, str], content_type: str, *, chunked: bool
    ) -> None:
        try:
            self.send_response(status)
            names = {name.lower() for name in headers}
            if "content-type" not in names:
                self.send_header("Content-Type", content_type)
            for name, value in headers.items():
                self.send_header(name, value)
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("Cache-Control", "no-cache")
            self.end_headers()
        except OSError:
            raise _Dropped from None

    def _send_json(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        self._send(status, json.dumps(body).encode("utf-8"), headers or {})

    def _send(self, status: int, payload: bytes, headers: Mapping[str, str]) -> None:
        extra = {**headers}
        if not any(name.lower() == "content-length" for name in extra):
            extra["Content-Length"] = str(len(payload))
        self._write_head(status, extra, "application/json", chunked=False)
        self._write(payload)


def _merge(base: Mapping[str, str], override: Mapping[str, str]) -> dict[str, str]:
    """``base`` updated with ``override``, header names compared without case."""
    names = {name.lower() for name in override}
    merged = {name: value for name, value in base.items() if name.lower() not in names}
    merged.update(override)
    return merged


def _sse(event: Event, line_end: str) -> str:
    """One server-sent event as text (a multi-line ``data`` becomes several data lines)."""
    lines = [] if event.name is None else [f"event: {event.name}"]
    lines.extend(f"data: {line}" for line in event.data.split("\n"))
    return line_end.join(lines) + line_end + line_end
