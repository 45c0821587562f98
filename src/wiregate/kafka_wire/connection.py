"""The Kafka connection: a sans-IO state machine like the AMQP one.

Bytes in through ``receive_data``; framed responses out of
``data_to_send``.  Kafka answers the requests of one connection in order,
so a request that must wait (a long-poll Fetch, a JoinGroup) is *deferred*:
its slot stays in the response queue and later responses queue behind it;
when it resolves, every response that is ready goes out.  A deferred
request never blocks other connections: the waiting is done by the core
(partition waiters, group state) and the scheduler (timeouts), not by I/O.
"""

from __future__ import annotations

import logging
import struct
from collections import deque
from typing import Any, Callable

from kio.schema.errors import ErrorCode

from wiregate.core import Broker

from . import apis  # noqa: F401  (registers the handlers)
from .faults import error_response, request_fields, with_topic_errors
from .protocol import (
    MAX_REQUEST_SIZE, ProtocolError, build, decode_produce, decode_request, encode_response, encode_response_parts, peek_header,
    response_class,
)
from .registry import APIS, advertised, supported

log = logging.getLogger("wiregate.kafka")

_size = struct.Struct(">i")

#: a receive buffer larger than this is let go once empty (one that fits
#: librdkafka's ~1 MB Produce requests stays, so each one is not copied
#: into freshly faulted-in memory)
#: the rest of a request at least this large is read straight into the
#: receive buffer (see receive_buffer)
_DIRECT_READ = 65536
_KEEP_BUFFER = 8 << 20
#: a receive buffer is sized for the request being received when it
#: announces at most this much (clients' default max.request.size is 1 MB);
#: beyond, it grows as bytes arrive, so a size prefix alone reserves little
_PREALLOCATE = 2 << 20

#: returned by a handler that sends nothing (Produce with acks=0)
NO_RESPONSE = object()


class Deferred:
    """A response that will be ready later; resolve it exactly once."""

    __slots__ = ("_connection", "_slot", "_cancel", "done")

    def __init__(self, connection: "KafkaConnection", slot: list[Any]) -> None:
        self._connection = connection
        self._slot = slot
        self._cancel: list[Callable[[], None]] = []
        self.done = False

    def on_cancel(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` if the connection goes away before resolution."""
        self._cancel.append(callback)

    def resolve(self, response: Any) -> None:
        if self.done:
            return
        self.done = True
        self._cancel.clear()
        self._connection._resolved(self._slot, response)

    def cancel(self) -> None:
        if self.done:
            return
        self.done = True
        callbacks, self._cancel = self._cancel, []
        for callback in callbacks:
            callback()


class RequestContext:
    """What a handler knows about the request it answers."""

    __slots__ = ("connection", "broker", "api_key", "api_version", "correlation_id", "client_id", "_slot")

    def __init__(self, connection: "KafkaConnection", api_key: int, api_version: int, correlation_id: int, client_id: str | None, slot: list[Any]) -> None:
        self.connection = connection
        self.broker = connection.broker
        self.api_key = api_key
        self.api_version = api_version
        self.correlation_id = correlation_id
        self.client_id = client_id
        self._slot = slot

    @property
    def response_class(self) -> type:
        return response_class(self.api_key, self.api_version)

    def respond(self, **fields: Any) -> Any:
        """The response entity for this request's version, from version-neutral fields."""
        return build(self.response_class, **fields)

    def durable_mark(self) -> int:
        """The data directory's write count now (0 in memory mode); pass it to :meth:`when_durable`."""
        persistence = self.broker.persistence
        return 0 if persistence is None else persistence.sequence

    def when_durable(self, mark: int, response: Any) -> Any:
        """``response``, held until everything written since ``mark`` is durable (--fsync policy).

        For acks=all Produce and OffsetCommit: in memory mode, or when
        nothing was written, the response goes out at once.
        """
        persistence = self.broker.persistence
        if persistence is None:
            return response
        sequence = persistence.sequence
        if sequence == mark or sequence <= persistence.synced:
            return response
        deferred = self.defer()
        persistence.when_synced(sequence, lambda: deferred.resolve(response))
        return deferred

    def defer(self) -> Deferred:
        """Answer later: returns a Deferred the handler (or the core) resolves."""
        deferred = Deferred(self.connection, self._slot)
        self.connection._deferred.add(deferred)
        return deferred


class KafkaConnection:
    """One Kafka client connection.

    Args:
        broker: the shared core engine.
        peer: the client's address, for logs.
        on_wake: called when output appears outside ``receive_data``.
        advertised: (host, port) brokers are announced with in Metadata.
    """

    def __init__(
        self,
        broker: Broker,
        *,
        peer: str = "",
        on_wake: Callable[[], None] | None = None,
        advertised: tuple[str, int] | None = None,
    ) -> None:
        self.broker = broker
        self.peer = peer
        self.on_wake = on_wake or (lambda: None)
        self.advertised = advertised or ("127.0.0.1", 9092)
        self.closed = False
        #: received bytes not yet handled: ``_buf[_start:_end]``; the buffer is
        #: reused (not shrunk and regrown per request), see :meth:`_keep`
        self._buf = bytearray()
        self._start = 0
        self._end = 0
        self._out: list[bytes] = []
        #: response slots in request order: [correlation_id, the encoded response's pieces or None]
        self._queue: deque[list[Any]] = deque()
        self._deferred: set[Deferred] = set()
        self._in_receive = False
        #: True while a fault rule delays this connection's next request:
        #: the gateway stops reading, later requests wait, as behind a slow broker
        self.reading_paused = False
        #: the request a delay rule holds back, handled when the delay ends
        self._held: bytes | None = None
        #: muted after a throttled response (KIP-219), until ``_end_throttle``
        self._throttled = False
        self._throttled_until = 0.0

    # ---------------------------------------------------------------- I/O
    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the socket; ``b""`` means the peer closed."""
        if self.closed:
            return
        if not data:
            self.connection_lost()
            return
        if self._start == self._end and not self.reading_paused:
            # Nothing buffered: requests are read straight out of ``data``
            # and only an incomplete tail is kept.
            self._guarded(lambda: self._keep(data, self._parse(data, 0, len(data))))
            return
        self._append(data)
        if self.reading_paused:
            return
        self._guarded(self._process)

    def receive_buffer(self) -> memoryview | None:
        """Where the rest of a large request being received may be read
        straight into (``recv_into``), or None: the buffer already holds
        room for the whole request (see _append), so bytes land where the
        request is parsed, without a copy per read.  The gateway releases
        the view before calling :meth:`received_into`."""
        live = self._end - self._start
        if live < 4 or self.closed or self.reading_paused:
            return None
        missing = 4 + _size.unpack_from(self._buf, self._start)[0] - live
        if missing < _DIRECT_READ or len(self._buf) - self._end < missing:
            return None
        return memoryview(self._buf)[self._end : self._end + missing]

    def received_into(self, n: int) -> None:
        """``n`` bytes were read into the view :meth:`receive_buffer` gave."""
        self._end += n
        if self.closed:
            return
        live = self._end - self._start
        if live >= 4 + _size.unpack_from(self._buf, self._start)[0]:
            self._guarded(self._process)

    @property
    def wants_more(self) -> bool:
        """A request is partly received: the gateway reads its rest at once,
        without a trip through the scheduler (never while reading is paused)."""
        return self._start != self._end and not self.reading_paused and not self.closed

    def _guarded(self, step: Callable[[], None]) -> None:
        self._in_receive = True
        try:
            step()
        except ProtocolError as error:
            log.warning("kafka connection %s closed: %s", self.peer, error)
            self._close()
        except Exception:
            log.exception("internal error on kafka connection %s", self.peer)
            self._close()
        finally:
            self._in_receive = False

    def parts_to_send(self) -> list[bytes | memoryview]:
        """Pending output as its pieces (a Fetch answer's stored record
        batches unjoined), for a vectored write; see data_to_send."""
        out = self._out
        if not out:
            return []
        self._out = []
        return out

    def data_to_send(self) -> bytes:
        # the one copy of a Fetch answer's record batches
        out = self._out
        if not out:
            return b""
        self._out = []
        return b"".join(out)

    def connection_lost(self) -> None:
        """The socket is gone: drop every parked request."""
        self.closed = True
        deferred, self._deferred = self._deferred, set()
        for item in deferred:
            item.cancel()
        self._queue.clear()

    def _close(self) -> None:
        self.connection_lost()

    # ------------------------------------------------------------ framing
    def _process(self) -> None:
        start = self._parse(self._buf, self._start, self._end)
        live = self._end - start
        if not live:
            self._start = self._end = 0
            if len(self._buf) > _KEEP_BUFFER:
                self._buf = bytearray()
        elif start:
            # The next request has begun: move it to the front while it is
            # short (at most one read), so that it grows in place.
            self._buf[:live] = self._buf[start : self._end]
            self._start, self._end = 0, live
        else:
            self._start = start

    def _parse(self, source: bytes | bytearray, pos: int, end: int) -> int:
        """Handle every complete request in ``source[pos:end]``; returns where the rest starts."""
        view = memoryview(source)
        try:
            while not self.closed and not self.reading_paused and end - pos >= 4:
                size = _size.unpack_from(source, pos)[0]
                if size < 8 or size > MAX_REQUEST_SIZE:
                    raise ProtocolError(f"request size {size} outside 8..{MAX_REQUEST_SIZE}")
                if end - pos - 4 < size:
                    break
                with view[pos + 4 : pos + 4 + size] as payload:
                    pos += 4 + size
                    self._request(payload)
        finally:
            view.release()
        return pos

    def _keep(self, data: bytes, pos: int) -> None:
        """Buffer what ``_parse`` left of a chunk read directly."""
        if pos < len(data) and not self.closed:
            self._append(memoryview(data)[pos:])

    def _append(self, data: bytes | memoryview) -> None:
        n = len(data)
        end = self._end + n
        if end > len(self._buf):
            live = self._end - self._start
            capacity = max(live + n, 2 * len(self._buf))
            if live + n >= 4:
                # room for the whole request being received at once
                head = bytes(self._buf[self._start : self._start + min(live, 4)]) + bytes(data[: max(0, 4 - live)])
                size = _size.unpack_from(head, 0)[0]
                if 8 <= size <= _PREALLOCATE:
                    capacity = max(capacity, 4 + size)
            buf = bytearray(capacity)
            buf[:live] = memoryview(self._buf)[self._start : self._end]
            self._buf = buf
            self._start, self._end = 0, live
            end = live + n
        self._buf[self._end : end] = data
        self._end = end

    def _request(self, payload: bytes | memoryview, *, delayed: bool = False) -> None:
        """Handle one request; ``payload`` (from its header on) may be a view of the receive buffer, valid during the call only."""
        api_key, api_version, correlation_id = peek_header(payload)
        api = APIS.get(api_key)
        if api is None:
            raise ProtocolError(f"unknown API key {api_key}")
        if not supported(api_key, api_version):
            if api_key == 18:
                # KIP-511: answer in the v0 layout, which every client can read
                self._queue.append([correlation_id, [self._unsupported_api_versions(correlation_id)]])
                self._flush()
                return
            raise ProtocolError(f"unsupported version {api_version} of {api.name}")
        faults = self.broker.faults.active.get("kafka")
        decoded = decode_produce(payload, api_version) if api_key == 0 and not faults else None
        if decoded is not None:
            # records stay views of the payload until the handler stores them
            client_id, request = decoded
        else:
            header, request = decode_request(api_key, api_version, bytes(payload))
            client_id = getattr(header, "client_id", None)
        rule = None
        if faults and not delayed:
            rule = self.broker.faults.match("kafka", request_fields(api_key, api_version, client_id, request), self.peer)
            if rule is not None:
                if rule.action == "delay":
                    self._hold(bytes(payload), rule.options["delay_ms"])
                    return
                if rule.action == "drop":
                    log.info("kafka connection %s: dropped by fault rule %d at %s", self.peer, rule.id, api.name)
                    self._close()
                    return
        slot: list[Any] = [correlation_id, None]
        self._queue.append(slot)
        ctx = RequestContext(self, api_key, api_version, correlation_id, client_id, slot)
        if rule is not None and rule.action == "error":
            response = self._refused(ctx, request, rule.options["error"], rule.match.get("topic"))
        else:
            response = api.handler(ctx, request)
        if response is NO_RESPONSE:
            self._queue.remove(slot)
        elif isinstance(response, Deferred):
            return
        else:
            slot[1] = encode_response_parts(response, correlation_id)
        self._flush()

    def _refused(self, ctx: RequestContext, request: Any, code: int, topic: str | None) -> Any:
        if ctx.api_key == 3:
            return with_topic_errors(APIS[3].handler(ctx, request), code, topic)
        if ctx.api_key == 0 and request.acks == 0:
            return NO_RESPONSE
        return error_response(ctx.response_class, request, code)

    def _hold(self, payload: bytes, delay_ms: float) -> None:
        # Held like a request still being handled: the connection reads
        # nothing more until it is answered (Kafka mutes the channel too).
        self._held = payload
        self.reading_paused = True
        self.broker.scheduler.call_at(self.broker.scheduler.now() + delay_ms / 1000, self._release_held)

    def _release_held(self) -> None:
        payload, self._held = self._held, None
        self.reading_paused = self._throttled
        if self.closed or payload is None:
            return

        def step() -> None:
            self._request(payload, delayed=True)
            self._process()

        self._guarded(step)
        self.on_wake()

    def throttle(self, delay_ms: int) -> None:
        """Mute the connection for ``delay_ms`` once this request is answered (KIP-219).

        As Kafka's quota throttling: the response carrying
        ``throttle_time_ms`` goes out at once, then nothing more is read
        from the connection until the time is up (the gateway stops
        reading, TCP pushes back), so a client that ignores the throttle
        gains nothing and nothing piles up in the server.
        """
        if self.closed or delay_ms <= 0:
            return
        scheduler = self.broker.scheduler
        until = scheduler.now() + delay_ms / 1000
        if self._throttled and until <= self._throttled_until:
            return
        self._throttled = True
        self._throttled_until = until
        self.reading_paused = True
        scheduler.call_at(until, self._end_throttle)

    def _end_throttle(self) -> None:
        if not self._throttled or self.broker.scheduler.now() < self._throttled_until:
            return  # a later throttle's timer ends it
        self._throttled = False
        if self._held is not None:
            return  # the delay rule's release resumes reading
        self.reading_paused = False
        if self.closed:
            return
        self._guarded(self._process)
        self.on_wake()

    @staticmethod
    def _unsupported_api_versions(correlation_id: int) -> bytes:
        cls = response_class(18, 0)
        response = build(
            cls,
            error_code=ErrorCode.unsupported_version,
            api_keys=[dict(api_key=k, min_version=lo, max_version=hi) for k, lo, hi in advertised()],
        )
        return encode_response(response, correlation_id)

    def _resolved(self, slot: list[Any], response: Any) -> None:
        if self.closed:
            return
        self._deferred = {d for d in self._deferred if not d.done}
        slot[1] = encode_response_parts(response, slot[0])
        was_empty = not self._out
        self._flush()
        if was_empty and self._out and not self._in_receive:
            self.on_wake()

    def _flush(self) -> None:
        queue = self._queue
        while queue and queue[0][1] is not None:
            self._out.extend(queue.popleft()[1])
