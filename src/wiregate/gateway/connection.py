"""The tasks that carry one client connection between a socket and a sans-IO protocol object."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, Union

import trio

if TYPE_CHECKING:
    from wiregate.gateway.trace import Tap

logger = logging.getLogger("wiregate.gateway")

# Big reads let the protocol layer parse every complete frame per wake-up.
_RECEIVE_SIZE = 65536
#: pieces per writev (Linux's IOV_MAX)
_IOV_MAX = 1024
#: output at least this large, in pieces, is written vectored (see _take_output)
_VECTORED_MIN = 65536

Buffer = Union[bytes, memoryview]


def _advance(parts: list[Buffer], sent: int) -> list[Buffer]:
    """What is left of ``parts`` once their first ``sent`` bytes are written."""
    for index, part in enumerate(parts):
        size = len(part)
        if sent < size:
            rest = parts[index:]
            if sent:
                rest[0] = memoryview(part)[sent:]
            return rest
        sent -= size
    return []
#: reads tried at once, without waiting, while the protocol is in the middle
#: of a message (its ``wants_more``)
_EAGER_READS = 4
#: how long a client may take to answer a server-sent connection.close
CLOSE_OK_TIMEOUT = 3.0


class SansIOConnection(Protocol):
    """What the gateway needs from a protocol connection (``wiregate.amqp.AMQPConnection``).

    AMQP connections also have ``handshake_done``, ``heartbeat``,
    ``heartbeat_frame()`` and ``shutdown()``; the handler uses them when
    present, so a protocol without handshake deadline or heartbeats (Kafka)
    needs only the members below.
    """

    closed: bool

    def receive_data(self, data: bytes) -> None: ...

    def data_to_send(self) -> bytes: ...

    def connection_lost(self) -> None: ...


ConnectionFactory = Callable[..., SansIOConnection]


def format_peer(stream: trio.SocketStream) -> str:
    """Return the client's address as ``host:port`` (``[host]:port`` for IPv6).

    Args:
        stream: An accepted TCP stream.

    Returns:
        The text used in logs and given to the protocol layer as ``peer``.
    """
    transport = getattr(stream, "transport_stream", stream)  # a TLS stream wraps the socket stream
    host, port = transport.socket.getpeername()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class ConnectionHandler:
    """Runs one client connection until either side closes it.

    Three tasks share the socket: a reader feeding ``receive_data``, the
    only writer (woken by the reader, by ``on_wake`` from core code running
    in other connections' tasks, and by the heartbeat timer; each wake-up
    drains all pending output into one ``send_all``), and a watchdog for
    the handshake deadline and heartbeats.  A client that sends faster than
    it reads keeps being read, so it cannot deadlock against its own
    deliveries.

    Args:
        stream: The accepted socket stream; the handler closes it.
        protocol: Short protocol name for logs (``"amqp"``, ``"kafka"``).
        factory: Called as ``factory(broker, peer=..., on_wake=...)`` to
            create the sans-IO connection.
        broker: The core broker handed to ``factory``.
        handshake_timeout: Seconds until the handshake must be done, or
            ``None`` when the protocol has no handshake.
        idle_timeout: Seconds without a byte in either direction after which
            the connection is closed (Kafka's ``connections.max.idle.ms``),
            or ``None``; used when there is no handshake deadline.

    Attributes:
        tap: The trace tap (:mod:`wiregate.gateway.trace`) fed with every
            chunk read and written, or ``None`` (tracing off: the only cost
            is one ``is None`` check per read and per flush).  Set by the
            gateway's tracer, in the Trio thread.
        conn_id: The connection's id in the trace, e.g. ``"amqp#3"``.
    """

    def __init__(
        self,
        stream: trio.SocketStream,
        *,
        protocol: str,
        factory: ConnectionFactory,
        broker: object,
        handshake_timeout: float | None,
        idle_timeout: float | None = None,
    ) -> None:
        self.stream = stream
        self._idle_timeout = idle_timeout
        self.protocol = protocol
        self.peer = format_peer(stream)
        self.done = trio.Event()
        self._factory = factory
        self._broker = broker
        self._handshake_timeout = handshake_timeout
        self._conn: SansIOConnection | None = None
        self._wake = trio.Event()
        self._handshake_done = trio.Event()
        self._closing = trio.Event()
        self._resume = trio.Event()
        self._heartbeat_due = False
        self._peer_gone = False
        self._cancel_scope = trio.CancelScope()
        now = trio.current_time()
        self._last_received = now
        self._last_sent = now
        self.tap: Tap | None = None
        self.conn_id = ""
        #: the socket's descriptor for writes and reads done without a trip
        #: through the scheduler (see _write_now); -1 for TLS streams
        self._fd = stream.socket.fileno() if isinstance(stream, trio.SocketStream) else -1
        #: a send_all is in progress in the writer task
        self._sending = False
        #: output taken from the protocol and already traced, not yet written
        self._unsent: list[Buffer] = []

    @property
    def protocol_connection(self) -> SansIOConnection | None:
        """The sans-IO protocol object, once :meth:`run` created it."""
        return self._conn

    @property
    def peer_gone(self) -> bool:
        """True once the client closed the connection or it broke."""
        return self._peer_gone

    async def run(self) -> None:
        """Serve the connection, then release it.

        Never raises an ``Exception``: a failure closes this connection only,
        with one log line.  On every way out, including cancellation, the
        protocol's ``connection_lost()`` is called exactly once (when the
        protocol object was created) and the socket is closed.
        """
        logger.info("accepted %s connection from %s", self.protocol, self.peer)
        try:
            with self._cancel_scope:
                self._conn = self._factory(self._broker, peer=self.peer, on_wake=self._on_wake)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._read_loop)
                    nursery.start_soon(self._write_loop)
                    nursery.start_soon(self._watchdog)
                    nursery.start_soon(self._close_deadline)
        except Exception as exc:
            _log_failure(self.protocol, self.peer, exc)
        finally:
            try:
                if self._conn is not None:
                    self._conn.connection_lost()
            except Exception as exc:
                _log_failure(self.protocol, self.peer, exc)
            finally:
                await trio.aclose_forcefully(self.stream)
                self.done.set()
                logger.info("closed %s connection from %s", self.protocol, self.peer)

    def shutdown(self) -> None:
        """Ask the client to go away (AMQP ``connection.close`` 320).

        The connection ends when the client answers, or when the gateway
        cancels it.  Protocols without a polite close are dropped at once.
        """
        shutdown = getattr(self._conn, "shutdown", None)
        if shutdown is None:
            self._cancel_scope.cancel()
            return
        try:
            shutdown()
        except Exception as exc:
            _log_failure(self.protocol, self.peer, exc)
            self._cancel_scope.cancel()
            return
        self._on_wake()

    def _on_wake(self) -> None:
        # Called synchronously, possibly from another connection's task:
        # only signal, never await.
        self._wake.set()
        self._resume.set()

    async def _read_loop(self) -> None:
        conn = self._conn
        assert conn is not None
        check_handshake = self._handshake_timeout is not None
        # a protocol that reads large messages straight into its own buffer
        # (Kafka: the rest of a big Produce request) offers one
        receive_buffer = getattr(conn, "receive_buffer", None) if self._fd >= 0 else None
        drained = False
        while True:
            view = receive_buffer() if receive_buffer is not None else None
            if view is not None:
                got = await self._receive_into(conn, view)
            else:
                if drained:
                    # The last read emptied the socket (it came back short):
                    # wait for more before reading, rather than first trying
                    # a read that would only say "nothing yet".
                    await trio.lowlevel.wait_readable(self._fd)
                    try:
                        data = os.read(self._fd, _RECEIVE_SIZE)
                    except BlockingIOError:
                        continue
                    except OSError:  # a reset by the peer ends the connection like an EOF does
                        data = b""
                else:
                    try:
                        data = await self.stream.receive_some(_RECEIVE_SIZE)
                    except trio.BrokenResourceError:
                        # A reset by the peer ends the connection like an EOF does.
                        data = b""
                drained = self._fd >= 0 and 0 < len(data) < _RECEIVE_SIZE
                self._last_received = trio.current_time()
                if self.tap is not None:
                    self.tap.received(data)
                conn.receive_data(data)
                got = bool(data)
            if got and self._fd >= 0:
                # A message split over several sends (pika writes method,
                # header and body separately; a 1 MB Produce arrives in many
                # segments) is usually complete in the kernel by now: take
                # the rest without a trip through the scheduler.
                for _ in range(_EAGER_READS):
                    if not getattr(conn, "wants_more", False) or conn.closed:
                        break
                    if not self._read_now(conn, receive_buffer):
                        break
            if check_handshake and getattr(conn, "handshake_done", False):
                self._handshake_done.set()
                check_handshake = False
            if got and self._fd >= 0 and not self._sending and not self._unsent and not conn.closed:
                # An answer to what was just read (a confirm, a Kafka
                # response) goes out now when the socket takes it whole;
                # the writer task is woken only for what remains.
                self._write_now(conn)
                if self._unsent:
                    self._on_wake()
            else:
                self._on_wake()
            if not got:
                self._peer_gone = True
                return
            if conn.closed:
                return
            if getattr(conn, "closing", False):
                self._closing.set()
            # A resource alarm blocks a publishing connection: stop reading
            # (TCP pushes back on the client) until the protocol resumes.
            while getattr(conn, "reading_paused", False) and not conn.closed:
                self._resume = trio.Event()
                await self._resume.wait()

    async def _receive_into(self, conn: SansIOConnection, view: memoryview) -> bool:
        """Read into the protocol's own buffer; False at EOF (the protocol is told)."""
        received = 0
        try:
            with view:
                received = await self.stream.socket.recv_into(view)
                if received and self.tap is not None:
                    self.tap.received(bytes(view[:received]))
        except OSError:  # a reset by the peer ends the connection like an EOF does
            received = 0
        self._last_received = trio.current_time()
        if not received:
            conn.receive_data(b"")
            return False
        conn.received_into(received)  # type: ignore[attr-defined]
        return True

    def _read_now(self, conn: SansIOConnection, receive_buffer: Callable[[], memoryview | None] | None) -> bool:
        """One read without waiting; False when nothing was there (or EOF or
        an error, left for the next wait to find)."""
        view = receive_buffer() if receive_buffer is not None else None
        if view is not None:
            with view:
                try:
                    received = os.readv(self._fd, [view])
                except OSError:
                    return False
                if received and self.tap is not None:
                    self.tap.received(bytes(view[:received]))
            if not received:
                return False
            conn.received_into(received)  # type: ignore[attr-defined]
            return True
        try:
            more = os.read(self._fd, _RECEIVE_SIZE)
        except OSError:  # nothing yet (EAGAIN), or broken: the next receive_some tells
            return False
        if not more:
            return False
        if self.tap is not None:
            self.tap.received(more)
        conn.receive_data(more)
        return True

    async def _write_loop(self) -> None:
        conn = self._conn
        assert conn is not None
        while True:
            await self._wake.wait()
            # A fresh event: wake-ups arriving during send_all are kept.
            self._wake = trio.Event()
            await self._flush(conn)
            if conn.closed or self._peer_gone:
                # Output queued while the last send was in progress.
                await self._flush(conn)
                # A failed handshake closes only after a delay (RabbitMQ's
                # anti-brute-force ?SILENT_CLOSE_DELAY).
                delay = getattr(conn, "close_delay", 0.0)
                if delay and not self._peer_gone:
                    await trio.sleep(delay)
                self._cancel_scope.cancel()
                return

    def _take_output(self, conn: SansIOConnection) -> bytes | list[Buffer]:
        """The protocol's pending output: one ``bytes``, or, for a large
        answer made of a few big pieces (a Kafka Fetch answer's record
        batches), the pieces themselves, written with one ``writev`` instead
        of being joined (a copy of every byte, into freshly faulted-in
        memory) first."""
        take_parts = getattr(conn, "parts_to_send", None)
        if take_parts is None or self._fd < 0:
            return conn.data_to_send()
        parts: list[Buffer] = take_parts()
        if len(parts) <= 1:
            return bytes(parts[0]) if parts else b""
        if len(parts) > _IOV_MAX or sum(map(len, parts)) < _VECTORED_MIN:
            return b"".join(parts)
        return parts

    def _traced(self, data: bytes | list[Buffer]) -> None:
        assert self.tap is not None
        self.tap.sent(b"".join(data) if isinstance(data, list) else data)

    def _write_now(self, conn: SansIOConnection) -> None:
        """Write pending output with one non-blocking write; keep what the
        socket did not take in ``_unsent`` for the writer task."""
        data = self._take_output(conn)
        if not data:
            return
        if self.tap is not None:
            self._traced(data)
        parts = data if isinstance(data, list) else [data]
        try:
            sent = os.writev(self._fd, parts) if len(parts) > 1 else os.write(self._fd, data)  # type: ignore[arg-type]
        except OSError:  # full (EAGAIN) or broken: the writer task tells which
            sent = 0
        self._unsent = _advance(parts, sent)
        if sent:
            self._last_sent = trio.current_time()

    async def _send_vectored(self, parts: list[Buffer]) -> None:
        """Write ``parts`` with ``writev``, waiting while the socket is full."""
        while parts:
            try:
                sent = os.writev(self._fd, parts[:_IOV_MAX])
            except BlockingIOError:
                await trio.lowlevel.wait_writable(self._fd)
                continue
            except OSError as exc:
                raise trio.BrokenResourceError(str(exc)) from exc
            parts = _advance(parts, sent)

    async def _flush(self, conn: SansIOConnection) -> None:
        pending = self._unsent
        self._unsent = []
        data = self._take_output(conn)
        if not data and not pending and self._heartbeat_due:
            data = conn.heartbeat_frame()  # type: ignore[attr-defined]
        self._heartbeat_due = False
        if self.tap is not None and data:
            self._traced(data)
        if isinstance(data, list):
            pending.extend(data)
        elif data:
            pending.append(data)
        if pending:
            self._sending = True
            try:
                if len(pending) > 1 and self._fd >= 0:
                    # what a direct write left goes first, as it is
                    await self._send_vectored(pending)
                else:
                    for part in pending:
                        await self.stream.send_all(part)
            except trio.BrokenResourceError:
                self._peer_gone = True
                self._cancel_scope.cancel()
                return
            finally:
                self._sending = False
            self._last_sent = trio.current_time()

    async def _close_deadline(self) -> None:
        # After the server sent connection.close (a hard error), the client
        # has CLOSE_OK_TIMEOUT seconds to answer before the socket is dropped.
        await self._closing.wait()
        await trio.sleep(CLOSE_OK_TIMEOUT)
        logger.warning("%s connection from %s: no close-ok within %g s, dropping", self.protocol, self.peer, CLOSE_OK_TIMEOUT)
        self._cancel_scope.cancel()

    async def _watchdog(self) -> None:
        if self._handshake_timeout is None:
            if self._idle_timeout is not None:
                await self._idle_loop(self._idle_timeout)
            return
        with trio.move_on_after(self._handshake_timeout):
            await self._handshake_done.wait()
        if not self._handshake_done.is_set():
            logger.warning(
                "%s connection from %s: handshake not completed within %g s, closing",
                self.protocol,
                self.peer,
                self._handshake_timeout,
            )
            self._cancel_scope.cancel()
            return
        heartbeat = getattr(self._conn, "heartbeat", 0)
        if heartbeat > 0:
            await self._heartbeat_loop(heartbeat)

    async def _idle_loop(self, idle: float) -> None:
        # Kafka's Selector closes a connection idle for connections.max.idle.ms:
        # no bytes read or written (a request stuck halfway counts as idle).
        while True:
            await trio.sleep_until(max(self._last_received, self._last_sent) + idle)
            if trio.current_time() >= max(self._last_received, self._last_sent) + idle:
                logger.info("%s connection from %s: idle for %g s, closing", self.protocol, self.peer, idle)
                self._cancel_scope.cancel()
                return

    async def _heartbeat_loop(self, heartbeat: float) -> None:
        # Like RabbitMQ: send a heartbeat after heartbeat/2 s without output;
        # declare the peer dead after 2 heartbeat intervals without input.
        interval = heartbeat / 2
        next_beat = self._last_sent + interval
        while True:
            await trio.sleep_until(min(next_beat, self._last_received + 2 * heartbeat))
            now = trio.current_time()
            if now >= self._last_received + 2 * heartbeat:
                logger.warning(
                    "%s connection from %s: missed heartbeats from client, timeout: %g s",
                    self.protocol,
                    self.peer,
                    heartbeat,
                )
                self._cancel_scope.cancel()
                return
            if now >= next_beat:
                if now - self._last_sent >= interval:
                    self._heartbeat_due = True
                    self._on_wake()
                    next_beat = now + interval
                else:
                    next_beat = self._last_sent + interval


def _log_failure(protocol: str, peer: str, exc: BaseException) -> None:
    # Tasks fail inside a nursery, so the interesting error is in a group.
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    logger.error("%s connection from %s failed: %s: %s", protocol, peer, type(exc).__name__, exc)
    logger.debug("traceback of the failure above", exc_info=exc)
