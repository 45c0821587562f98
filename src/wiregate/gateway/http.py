"""The small HTTP API, HTTP/1.1 on h11.

Routes:

- ``GET /api/health``: 200 ``{"status": "ok"}`` once every listener
  accepts, else 503.
- ``GET /api/overview``: version, listeners, connection and object counts
  (field names from RabbitMQ's management API).
- ``GET /api/trace[?proto=amqp|kafka]``: the decoded-frame trace as
  server-sent events (``text/event-stream``), one ``data: {json}`` event
  per trace event (see :mod:`wiregate.gateway.trace`).  Tracing is on
  while at least one client listens.  A client that reads too slowly loses
  events rather than slowing the server: they are dropped and counted, and
  an ``event: dropped`` with ``data: {"dropped": n, "total": m}`` says so.
  A comment line is sent every 15 s of silence.
- ``GET /api/faults``: the fault rules (``broker.faults.describe()``).
- ``POST /api/faults``: add a rule from a JSON object; 201 with the rule
  (and a ``location`` header), 400 with the reason when it is refused.
- ``DELETE /api/faults/{id}``: 204, or 404 when there is no such rule.
- ``DELETE /api/faults``: remove every rule; 204.

Every JSON answer ends with a newline.  Errors are JSON objects with
``error`` and ``reason``: 404 for an unknown path, 405 (with ``allow``)
for a method the path does not take, 400 for a malformed request or JSON
body, 413 for a body over 64 KiB.  ``HEAD`` is answered wherever ``GET``
is.  Keep-alive and pipelining are supported; a client idle for 10 s
while a request is due is dropped.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
import sys
import urllib.parse
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

import trio

import wiregate
from wiregate.gateway.trace import Subscription


def _import_lazily(name: str) -> ModuleType:
    """``name``, loaded on its first attribute access (the stdlib's
    LazyLoader recipe): the HTTP API's parser is not worth ~8 ms of every
    start-up before the first HTTP request arrives."""
    module = sys.modules.get(name)
    if module is not None:
        return module
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(f"no module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module


if TYPE_CHECKING:
    import h11
else:
    h11 = _import_lazily("h11")

logger = logging.getLogger("wiregate.gateway")

_RECEIVE_SIZE = 16384
# A client that sends nothing for this long is dropped (slowloris).
_IDLE_TIMEOUT = 10.0
# Request bodies larger than this are refused rather than read.
_MAX_BODY = 65536
_SERVER_HEADER = f"wiregate/{wiregate.__version__}".encode()
# Server-sent events: a comment after this much silence; events buffered per client.
_SSE_KEEPALIVE = 15.0
_SSE_BUFFER = 4096


class HTTPStatusSource(Protocol):
    """What the HTTP API reports on; implemented by the gateway.

    Attributes:
        ready: True once every listener accepts, False before and while
            shutting down.
        broker: The core broker.
        listeners: ``(protocol, host, port)`` for every listening socket.
        connection_count: Open connections per protocol.
        tracer: The :class:`~wiregate.gateway.trace.Tracer` (``/api/trace``).
    """

    ready: bool
    broker: object
    listeners: list[tuple[str, str, int]]
    connection_count: dict[str, int]
    tracer: Any


@dataclasses.dataclass
class Request:
    """One HTTP request as a route handler sees it.

    Attributes:
        method: ``"GET"``, ``"POST"``, …  (``HEAD`` arrives as ``"GET"``.)
        path: The path without the query.
        params: Values of the route's ``{name}`` segments.
        query: Query parameters (the last value of each).
        body: The parsed JSON body of routes that take one, else ``None``.
        source: The gateway.
    """

    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    body: Any
    source: HTTPStatusSource


#: writes one chunk of a streaming response; returns when it is sent
Send = Callable[[bytes], Awaitable[None]]


@dataclasses.dataclass
class Response:
    """What a route handler returns.

    Attributes:
        status: The HTTP status.
        body: JSON-able data; not sent for 204 and 304.
        headers: Extra headers.
        stream: For a streaming response (no ``body``): an async function
            called with ``send(bytes)`` and the request; the response ends
            when it returns.  The client going away cancels it.
        content_type: Of the body or stream.
    """

    status: int
    body: Any = None
    headers: list[tuple[bytes, bytes]] = dataclasses.field(default_factory=list)
    stream: Callable[[Send, Request], Awaitable[None]] | None = None
    content_type: bytes = b"application/json"


@dataclasses.dataclass(frozen=True)
class Route:
    """One route: a method and a path pattern (``{name}`` matches one segment).

    Attributes:
        takes_body: The request body is parsed as JSON (400 when it is not).
    """

    method: str
    pattern: str
    handler: Callable[[Request], Response]
    takes_body: bool = False

    def match(self, segments: list[str]) -> dict[str, str] | None:
        parts = self.pattern.strip("/").split("/")
        if len(parts) != len(segments):
            return None
        params = {}
        for part, segment in zip(parts, segments, strict=True):
            if part.startswith("{") and part.endswith("}"):
                if not segment:
                    return None
                params[part[1:-1]] = segment
            elif part != segment:
                return None
        return params


def _error(status: int, error: str, reason: str) -> Response:
    return Response(status, {"error": error, "reason": reason})


# ------------------------------------------------------------------ routes
def _health(request: Request) -> Response:
    if request.source.ready:
        return Response(200, {"status": "ok"})
    return Response(503, {"status": "unavailable"})


def _overview(request: Request) -> Response:
    # Field names follow RabbitMQ's management API (GET /api/overview)
    # where a counterpart exists, so existing tooling reads them.
    source = request.source
    vhosts = getattr(source.broker, "vhosts", None) or {}
    totals = {
        "connections": sum(source.connection_count.values()),
        "vhosts": len(vhosts),
        "exchanges": sum(len(getattr(vhost, "exchanges", ())) for vhost in vhosts.values()),
        "queues": sum(len(getattr(vhost, "queues", ())) for vhost in vhosts.values()),
    }
    return Response(
        200,
        {
            "product_name": "wiregate",
            "product_version": wiregate.__version__,
            "version": wiregate.__version__,
            "listeners": [
                {"protocol": protocol, "ip_address": host, "port": port}
                for protocol, host, port in source.listeners
            ],
            "connections": dict(source.connection_count),
            "object_totals": totals,
        },
    )


def _trace(request: Request) -> Response:
    proto = request.query.get("proto") or None
    if proto not in (None, "amqp", "kafka"):
        return _error(400, "bad_request", f"proto must be amqp or kafka, not {proto!r}")
    tracer = request.source.tracer

    async def stream(send: Send, _request: Request) -> None:
        subscription = Subscription(proto=proto, maxlen=_SSE_BUFFER)
        # Subscribed before the first line: a client that has read it misses nothing.
        tracer.add_sink(subscription)
        try:
            await send(b": wiregate trace\n\n")
            while not subscription.closed:
                await subscription.wait(_SSE_KEEPALIVE)
                events, dropped = subscription.drain()
                chunks = [b"data: " + json.dumps(event, separators=(",", ":"), default=str).encode() + b"\n\n" for event in events]
                if dropped:
                    note = {"dropped": dropped, "total": subscription.dropped_total}
                    chunks.append(b"event: dropped\ndata: " + json.dumps(note).encode() + b"\n\n")
                await send(b"".join(chunks) or b": keep-alive\n\n")
        finally:
            tracer.remove_sink(subscription)

    return Response(
        200,
        stream=stream,
        content_type=b"text/event-stream",
        headers=[(b"x-accel-buffering", b"no")],
    )


def _faults_of(request: Request) -> Any:
    return getattr(request.source.broker, "faults", None)


_NO_FAULTS = ("not_implemented", "this broker has no fault injection")


def _list_faults(request: Request) -> Response:
    faults = _faults_of(request)
    if faults is None:
        return _error(501, *_NO_FAULTS)
    return Response(200, faults.describe())


def _add_fault(request: Request) -> Response:
    faults = _faults_of(request)
    if faults is None:
        return _error(501, *_NO_FAULTS)
    if not isinstance(request.body, dict):
        return _error(400, "bad_request", "a fault rule is a JSON object")
    try:
        rule = faults.add(request.body)
    except ValueError as exc:
        return _error(400, "bad_request", str(exc))
    headers = []
    if isinstance(rule, dict) and "id" in rule:
        headers.append((b"location", f"/api/faults/{rule['id']}".encode()))
    return Response(201, rule, headers=headers)


def _remove_fault(request: Request) -> Response:
    faults = _faults_of(request)
    if faults is None:
        return _error(501, *_NO_FAULTS)
    text = request.params["id"]
    try:
        rule_id = int(text)
    except ValueError:
        return _error(404, "not_found", f"no fault rule {text!r}")
    if not faults.remove(rule_id):
        return _error(404, "not_found", f"no fault rule {rule_id}")
    return Response(204)


def _clear_faults(request: Request) -> Response:
    faults = _faults_of(request)
    if faults is None:
        return _error(501, *_NO_FAULTS)
    faults.clear()
    return Response(204)


ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/health", _health),
    Route("GET", "/api/overview", _overview),
    Route("GET", "/api/trace", _trace),
    Route("GET", "/api/faults", _list_faults),
    Route("POST", "/api/faults", _add_fault, takes_body=True),
    Route("DELETE", "/api/faults", _clear_faults),
    Route("DELETE", "/api/faults/{id}", _remove_fault),
)


# -------------------------------------------------------------- the server
async def serve_http(stream: trio.SocketStream, source: HTTPStatusSource) -> None:
    """Answer HTTP requests on one connection until the client is done.

    Keep-alive and pipelining are supported.  A malformed request gets a
    400 and the connection is closed; a client that takes more than 10 s to
    send a request is dropped.  Never raises an ``Exception``; the stream is
    always closed.

    Args:
        stream: The accepted socket stream.
        source: What the API reports on.
    """
    conn = h11.Connection(h11.SERVER)
    try:
        while await _serve_one(stream, conn, source):
            pass
    except trio.BrokenResourceError:
        return
    except Exception as exc:
        logger.error("http connection failed: %s: %s", type(exc).__name__, exc)
    finally:
        await trio.aclose_forcefully(stream)


async def _serve_one(stream: trio.SocketStream, conn: h11.Connection, source: HTTPStatusSource) -> bool:
    """Answer one request; return whether the connection stays open."""
    request = None
    body = b""
    response: Response | None = None
    with trio.move_on_after(_IDLE_TIMEOUT) as idle:
        try:
            request = await _next_event(stream, conn)
            if not isinstance(request, h11.Request):
                return False
            chunks: list[bytes] = []
            size = 0
            while isinstance(event := await _next_event(stream, conn), h11.Data):
                size += len(event.data)
                if size > _MAX_BODY:
                    response = _error(413, "payload_too_large", f"request bodies are limited to {_MAX_BODY} bytes")
                    break
                chunks.append(event.data)
            body = b"".join(chunks)
        except h11.RemoteProtocolError as exc:
            if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
                return False
            response = _error(exc.error_status_hint, "bad_request", str(exc))
            request = None
    if idle.cancelled_caught:
        return False
    head = request is not None and request.method == b"HEAD"
    close = response is not None  # a refused or unreadable request ends the connection
    if response is None:
        assert request is not None
        response = _dispatch(request, body, source)
    if response.stream is not None and not head:
        assert request is not None
        await _stream(stream, conn, response, request, source)
        return False
    with trio.move_on_after(_IDLE_TIMEOUT) as stalled:
        await _respond(stream, conn, response, close=close, head=head)
    if stalled.cancelled_caught:  # a client that does not read its answer
        return False
    if conn.our_state is h11.MUST_CLOSE or close:
        return False
    conn.start_next_cycle()
    return True


def _dispatch(request: h11.Request, body: bytes, source: HTTPStatusSource) -> Response:
    target = request.target.decode("ascii", "replace")
    raw_path, _, raw_query = target.partition("?")
    path = urllib.parse.unquote(raw_path)
    query = dict(urllib.parse.parse_qsl(raw_query))
    segments = path.strip("/").split("/")
    method = request.method.decode("ascii", "replace").upper()
    if method == "HEAD":
        method = "GET"
    allowed: list[str] = []
    for route in ROUTES:
        params = route.match(segments)
        if params is None:
            continue
        if route.method != method:
            allowed.append(route.method)
            continue
        parsed = None
        if route.takes_body:
            try:
                parsed = json.loads(body) if body.strip() else None
            except ValueError as exc:  # also UnicodeDecodeError
                return _error(400, "bad_request", f"the body is not JSON: {exc}")
        handled = Request(method, path, params, query, parsed, source)
        try:
            return route.handler(handled)
        except Exception as exc:
            logger.error("http %s %s failed: %s: %s", method, path, type(exc).__name__, exc)
            logger.debug("traceback of the failure above", exc_info=exc)
            return _error(500, "internal_error", f"{type(exc).__name__}: {exc}")
    if allowed:
        if "GET" in allowed:
            allowed.append("HEAD")
        response = _error(405, "method_not_allowed", f"{path} takes {', '.join(allowed)}")
        response.headers.append((b"allow", ", ".join(allowed).encode()))
        return response
    return _error(404, "not_found", f"no such path: {path}")


async def _next_event(stream: trio.SocketStream, conn: h11.Connection) -> Any:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        conn.receive_data(await stream.receive_some(_RECEIVE_SIZE))


def _headers(response: Response, *, length: int | None, close: bool) -> list[tuple[bytes, bytes]]:
    headers = [(b"content-type", response.content_type)]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    headers += [(b"server", _SERVER_HEADER), (b"cache-control", b"no-cache"), *response.headers]
    if close:
        headers.append((b"connection", b"close"))
    return headers


async def _respond(stream: trio.SocketStream, conn: h11.Connection, response: Response, *, close: bool, head: bool) -> None:
    if response.status in (204, 304):
        payload = b""
        headers = [(b"server", _SERVER_HEADER), *response.headers]
        if close:
            headers.append((b"connection", b"close"))
    else:
        payload = json.dumps(response.body).encode() + b"\n"
        headers = _headers(response, length=len(payload), close=close)
    data = conn.send(h11.Response(status_code=response.status, headers=headers))
    if payload and not head:
        data += conn.send(h11.Data(data=payload))
    data += conn.send(h11.EndOfMessage())
    await stream.send_all(data)


async def _stream(
    stream: trio.SocketStream,
    conn: h11.Connection,
    response: Response,
    request: h11.Request,
    source: HTTPStatusSource,
) -> None:
    """Send a streaming response until its producer returns or the client leaves."""
    assert response.stream is not None
    method = request.method.decode("ascii", "replace")
    path = request.target.decode("ascii", "replace").partition("?")[0]
    handled = Request(method, path, {}, {}, None, source)
    # No content-length: chunked for HTTP/1.1, close-delimited for 1.0.
    await stream.send_all(conn.send(h11.Response(status_code=response.status, headers=_headers(response, length=None, close=True))))

    async def send(data: bytes) -> None:
        await stream.send_all(conn.send(h11.Data(data=data)))

    async with trio.open_nursery() as nursery:

        async def watch_client() -> None:
            # The client sends nothing more; EOF or a reset means it left.
            try:
                while await stream.receive_some(_RECEIVE_SIZE):
                    pass
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            nursery.cancel_scope.cancel()

        async def produce() -> None:
            try:
                await response.stream(send, handled)  # type: ignore[misc]
                await stream.send_all(conn.send(h11.EndOfMessage()))
            except trio.BrokenResourceError:
                pass
            nursery.cancel_scope.cancel()

        nursery.start_soon(watch_client)
        nursery.start_soon(produce)
