"""The small HTTP API: ``/api/health`` and ``/api/overview``, HTTP/1.1 on h11."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, Protocol

import h11
import trio

import wiregate

logger = logging.getLogger("wiregate.gateway")

_RECEIVE_SIZE = 16384
# A client that sends nothing for this long is dropped (slowloris).
_IDLE_TIMEOUT = 10.0
# Request bodies are never used; more than this is refused rather than read.
_MAX_BODY = 65536
_SERVER_HEADER = f"wiregate/{wiregate.__version__}".encode()

# One route: a function of the status source returning (HTTP status, JSON body).
Route = Callable[["HTTPStatusSource"], tuple[int, Any]]


class HTTPStatusSource(Protocol):
    """What the HTTP API reports on; implemented by the gateway.

    Attributes:
        ready: True once every listener accepts, False before and while
            shutting down.
        broker: The core broker.
        listeners: ``(protocol, host, port)`` for every listening socket.
        connection_count: Open connections per protocol.
    """

    ready: bool
    broker: object
    listeners: list[tuple[str, str, int]]
    connection_count: dict[str, int]


def _health(source: HTTPStatusSource) -> tuple[int, Any]:
    if source.ready:
        return 200, {"status": "ok"}
    return 503, {"status": "unavailable"}


def _overview(source: HTTPStatusSource) -> tuple[int, Any]:
    # Field names follow RabbitMQ's management API (GET /api/overview)
    # where a counterpart exists, so existing tooling reads them.
    vhosts = getattr(source.broker, "vhosts", None) or {}
    totals = {
        "connections": sum(source.connection_count.values()),
        "vhosts": len(vhosts),
        "exchanges": sum(len(getattr(vhost, "exchanges", ())) for vhost in vhosts.values()),
        "queues": sum(len(getattr(vhost, "queues", ())) for vhost in vhosts.values()),
    }
    return 200, {
        "product_name": "wiregate",
        "product_version": wiregate.__version__,
        "version": wiregate.__version__,
        "listeners": [
            {"protocol": protocol, "ip_address": host, "port": port}
            for protocol, host, port in source.listeners
        ],
        "connections": dict(source.connection_count),
        "object_totals": totals,
    }


_ROUTES: dict[str, Route] = {
    "/api/health": _health,
    "/api/overview": _overview,
}


async def serve_http(stream: trio.SocketStream, source: HTTPStatusSource) -> None:
    """Answer HTTP requests on one connection until the client is done.

    Keep-alive and pipelining are supported.  A malformed request gets a
    400 and the connection is closed; an idle client is dropped after 10 s.
    Never raises an ``Exception``; the stream is always closed.

    Args:
        stream: The accepted socket stream.
        source: What the API reports on.
    """
    conn = h11.Connection(h11.SERVER)
    try:
        keep_open = True
        while keep_open:
            keep_open = False
            with trio.move_on_after(_IDLE_TIMEOUT):
                keep_open = await _serve_one(stream, conn, source)
    except trio.BrokenResourceError:
        return
    except Exception as exc:
        logger.error("http connection failed: %s: %s", type(exc).__name__, exc)
    finally:
        await trio.aclose_forcefully(stream)


async def _serve_one(stream: trio.SocketStream, conn: h11.Connection, source: HTTPStatusSource) -> bool:
    """Answer one request; return whether the connection stays open."""
    try:
        request = await _next_event(stream, conn)
        if not isinstance(request, h11.Request):
            return False
        status, body, close = _route(request, source)
        # The body is read and dropped so that keep-alive stays in sync.
        body_size = 0
        while isinstance(event := await _next_event(stream, conn), h11.Data):
            body_size += len(event.data)
            if body_size > _MAX_BODY:
                status, body, close = 413, {"error": "payload_too_large"}, True
                break
    except h11.RemoteProtocolError as exc:
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return False
        status, body, close = exc.error_status_hint, {"error": "bad_request", "reason": str(exc)}, True
        request = None
    await _respond(stream, conn, status, body, close=close, head=request is not None and request.method == b"HEAD")
    if conn.our_state is h11.MUST_CLOSE or close:
        return False
    conn.start_next_cycle()
    return True


def _route(request: h11.Request, source: HTTPStatusSource) -> tuple[int, Any, bool]:
    path = request.target.split(b"?", 1)[0].decode("ascii", "replace")
    route = _ROUTES.get(path)
    if route is None:
        return 404, {"error": "not_found", "reason": f"no such path: {path}"}, False
    if request.method not in (b"GET", b"HEAD"):
        return 405, {"error": "method_not_allowed", "reason": "only GET and HEAD are supported"}, True
    status, body = route(source)
    return status, body, False


async def _next_event(stream: trio.SocketStream, conn: h11.Connection) -> Any:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        conn.receive_data(await stream.receive_some(_RECEIVE_SIZE))


async def _respond(
    stream: trio.SocketStream,
    conn: h11.Connection,
    status: int,
    body: Any,
    *,
    close: bool,
    head: bool,
) -> None:
    payload = json.dumps(body).encode() + b"\n"
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"server", _SERVER_HEADER),
        (b"cache-control", b"no-cache"),
    ]
    if close:
        headers.append((b"connection", b"close"))
    data = conn.send(h11.Response(status_code=status, headers=headers))
    if not head:
        data += conn.send(h11.Data(data=payload))
    data += conn.send(h11.EndOfMessage())
    await stream.send_all(data)
