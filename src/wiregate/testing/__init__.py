"""Run a wiregate server inside a test process.

::

    import pika
    import wiregate.testing

    def test_publish():
        with wiregate.testing.Server() as srv:
            connection = pika.BlockingConnection(pika.URLParameters(srv.amqp_url))
            ...

The server runs its own Trio loop in a background thread, on ports the
kernel picks (127.0.0.1 by default), so tests can run in parallel and any
client library, blocking or async, can connect.  Starting and stopping take
milliseconds.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import trio

from wiregate.core import Broker
from wiregate.gateway import Addresses, Config, Gateway
from wiregate.gateway.listeners import format_endpoint
from wiregate.gateway.memory import DEFAULT_WATERMARK

from . import _state
from ._faults import Fault, Faults
from ._state import GroupInfo, MemberInfo, QueueInfo, Record

__all__ = ["AsyncServer", "Fault", "Faults", "GroupInfo", "MemberInfo", "QueueInfo", "Record", "Server", "server"]

T = TypeVar("T")


class Server:
    """A wiregate server in a background thread, usable as a context manager.

    Args:
        host: Address to listen on; ``None`` means both ``127.0.0.1`` and
            ``::1``.
        amqp_port: AMQP port, 0 (the default) lets the kernel pick.
        amqps_port: AMQP-over-TLS port (0: the kernel picks); ``None`` (the
            default) opens no TLS listener.  It serves the bundled
            self-signed ``localhost`` certificate.
        kafka_port: Kafka port, 0 lets the kernel pick.
        http_port: HTTP API port, 0 lets the kernel pick.
        broker: The core broker to serve; a new one when ``None``.  It
            outlives :meth:`stop`, so a restarted server keeps its state.
        data_dir: Passed on to :class:`~wiregate.gateway.Config`.
        handshake_timeout: Seconds a client has to finish the AMQP handshake.
        shutdown_grace: Seconds :meth:`stop` waits for clients to answer
            ``connection.close``.
        memory_high_watermark: Past this much memory held by messages, AMQP
            publishers are blocked and Kafka Produce is throttled: a
            fraction of RAM (float), bytes (int), ``"64MiB"``, or ``None``
            (see :class:`~wiregate.gateway.Config`); changed while running
            with :meth:`set_memory_high_watermark`.

    Attributes:
        config: The :class:`~wiregate.gateway.Config` the server runs with.
        broker: The core broker.  It belongs to the server's thread: read it
            freely between client operations, but change it through
            :meth:`call`.
    """

    def __init__(
        self,
        *,
        host: str | None = "127.0.0.1",
        amqp_port: int = 0,
        amqps_port: int | None = None,
        kafka_port: int = 0,
        http_port: int = 0,
        broker: Broker | None = None,
        data_dir: Path | None = None,
        handshake_timeout: float = 10.0,
        shutdown_grace: float = 1.0,
        memory_high_watermark: float | int | str | None = DEFAULT_WATERMARK,
    ) -> None:
        self.config = Config(
            host=host,
            amqp_port=amqp_port,
            amqps_port=amqps_port,
            kafka_port=kafka_port,
            http_port=http_port,
            data_dir=data_dir,
            handshake_timeout=handshake_timeout,
            shutdown_grace=shutdown_grace,
            memory_high_watermark=memory_high_watermark,
        )
        self.broker = broker if broker is not None else Broker()
        #: fault injection: ``server.faults.kafka("Produce", error=...)``, ``server.faults.amqp(...)``
        self.faults = Faults(self)
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._gateway: Gateway | None = None
        self._addresses: Addresses | None = None
        self._error: BaseException | None = None

    def start(self) -> Server:
        """Start listening; return once every listener accepts.

        Returns:
            The server itself, for chaining.

        Raises:
            RuntimeError: The server is already running.
            wiregate.gateway.ListenError: A port could not be opened.
        """
        if self._thread is not None:
            raise RuntimeError("wiregate server is already running")
        self._error = None
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="wiregate-server", daemon=True)
        self._thread.start()
        ready.wait()
        if self._addresses is None:
            self._thread.join()
            self._thread = None
            error, self._error = self._error, None
            assert error is not None
            raise error
        return self

    def stop(self) -> None:
        """Shut down gracefully and wait for the server thread to end.

        AMQP clients receive ``connection.close`` 320 and get
        ``shutdown_grace`` seconds to answer.  Does nothing when the server
        is not running.

        Raises:
            BaseException: Whatever made the server fail while it ran.
        """
        thread = self._thread
        if thread is None:
            return
        gateway = self._gateway
        assert gateway is not None
        try:
            trio.from_thread.run_sync(gateway.shutdown, trio_token=self._token)
        except trio.RunFinishedError:
            pass  # The loop already ended (it failed); the error is re-raised below.
        thread.join()
        self._thread = None
        self._gateway = None
        self._addresses = None
        error, self._error = self._error, None
        if error is not None:
            raise error

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a synchronous function in the server's thread and return its result.

        Use it to change the broker while clients are connected, so that
        they are woken the same way as by another client.  It may be called
        from any thread, including one running its own Trio or asyncio loop
        (it blocks that loop only while ``fn`` runs).

        Args:
            fn: The function, e.g. a broker method.
            *args: Its positional arguments.

        Returns:
            What ``fn`` returned.

        Raises:
            RuntimeError: The server is not running.
            Exception: Whatever ``fn`` raised.
        """
        thread, token = self._thread, self._token
        if thread is None or token is None:
            raise RuntimeError("wiregate server is not running")
        if threading.current_thread() is thread:
            return fn(*args)
        # Not trio.from_thread: it refuses callers that run a Trio loop of
        # their own (a trio application embedding the server).
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn(*args))
            except BaseException as exc:
                future.set_exception(exc)

        try:
            token.run_sync_soon(run)
        except trio.RunFinishedError:
            raise RuntimeError("wiregate server is not running") from None
        while True:
            try:
                return future.result(timeout=0.5)
            except concurrent.futures.TimeoutError:
                if future.done():
                    raise  # what fn itself raised
                # a loop that ended after taking the call never runs it
                if not thread.is_alive():
                    raise RuntimeError("wiregate server stopped before the call ran") from None

    def set_memory_high_watermark(self, watermark: float | int | str | None) -> None:
        """Change the memory high watermark of the running server and sample at once.

        The memory alarm is raised (or cleared) before this returns when the
        messages held are past (or well below) the new watermark.

        Args:
            watermark: As the constructor's ``memory_high_watermark``.

        Raises:
            RuntimeError: The server is not running.
            ValueError: Not a watermark.
        """
        gateway = self._gateway
        if gateway is None:
            raise RuntimeError("wiregate server is not running")
        self.call(gateway.set_memory_high_watermark, watermark)

    def reset(self) -> None:
        """Empty the broker for the next test: no exchanges (but the
        standard ones), queues, topics, groups, offsets or fault rules are
        left.  Connections stay open.  Takes well under a millisecond."""
        self.call(self.broker.reset)

    @contextlib.contextmanager
    def recording(self) -> Iterator[list[dict[str, Any]]]:
        """Record the decoded-frame trace while the block runs.

        ::

            with srv.recording() as events:
                ...  # clients talk to the server
            names = [e["name"] for e in events]

        Yields:
            A list that fills with trace events (dicts, see
            :mod:`wiregate.gateway.trace`) as frames pass; tracing is on
            only while some recording (or ``--trace``, or an HTTP
            subscriber) is active.

        Raises:
            RuntimeError: The server is not running.
        """
        if self._gateway is None:
            raise RuntimeError("wiregate server is not running")
        tracer = self._gateway.tracer
        events: list[dict[str, Any]] = []
        sink = events.append
        self.call(tracer.add_sink, sink)
        try:
            yield events
        finally:
            if self._thread is not None:
                self.call(tracer.remove_sink, sink)

    # ------------------------------------------------------------ declare
    def declare_queue(
        self,
        name: str,
        *,
        durable: bool = False,
        auto_delete: bool = False,
        arguments: dict[str, Any] | None = None,
        vhost: str = "/",
    ) -> str:
        """Declare a queue as ``queue.declare`` would (``x-`` arguments included).

        Returns:
            The queue's name (generated when ``name`` is empty).

        Raises:
            wiregate.core.CoreError: As ``queue.declare`` would fail, e.g.
                PreconditionFailed for a redeclaration with other properties.
        """
        return self.call(_state.declare_queue, self.broker, name, durable, auto_delete, arguments, vhost)

    def declare_exchange(
        self,
        name: str,
        type: str = "direct",
        *,
        durable: bool = False,
        auto_delete: bool = False,
        internal: bool = False,
        arguments: dict[str, Any] | None = None,
        vhost: str = "/",
    ) -> None:
        """Declare an exchange as ``exchange.declare`` would.

        Raises:
            wiregate.core.CoreError: As ``exchange.declare`` would fail.
        """
        self.call(_state.declare_exchange, self.broker, name, type, durable, auto_delete, internal, arguments, vhost)

    def bind_queue(
        self,
        queue: str,
        exchange: str,
        routing_key: str = "",
        *,
        arguments: dict[str, Any] | None = None,
        vhost: str = "/",
    ) -> None:
        """Bind a queue to an exchange as ``queue.bind`` would.

        Raises:
            wiregate.core.CoreError: NotFound for a missing queue or exchange.
        """
        self.call(_state.bind_queue, self.broker, queue, exchange, routing_key, arguments, vhost)

    def create_topic(self, name: str, partitions: int = 1, *, configs: dict[str, str] | None = None) -> None:
        """Create a Kafka topic (``configs``: topic configs such as ``cleanup.policy``).

        Raises:
            ValueError: Invalid name, no partitions, or the topic exists.
        """
        self.call(_state.create_topic, self.broker, name, partitions, configs)

    def produce(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        headers: list[tuple[str, bytes | None]] | None = None,
        partition: int = 0,
        timestamp_ms: int | None = None,
    ) -> int:
        """Append one record to a topic partition, as a producer would.

        Returns:
            The record's offset.

        Raises:
            KeyError: No such topic or partition.
        """
        return self.call(_state.produce, self.broker, topic, partition, [(key, value, list(headers or []), timestamp_ms)])

    # ------------------------------------------------------------ inspect
    def queue(self, name: str, *, vhost: str = "/") -> QueueInfo:
        """A queue's counters and properties.

        Raises:
            KeyError: No such queue.
        """
        return self.call(_state.queue_info, self.broker, name, vhost)

    def queues(self, *, vhost: str = "/") -> dict[str, QueueInfo]:
        """Every queue of a vhost by name."""
        return self.call(_state.queues, self.broker, vhost)

    def queue_bodies(self, name: str, *, vhost: str = "/") -> list[bytes]:
        """The bodies of the messages ready in a queue, in delivery order (a stream: all it holds).

        Raises:
            KeyError: No such queue.
        """
        return self.call(_state.queue_bodies, self.broker, name, vhost)

    def exchanges(self, *, vhost: str = "/") -> dict[str, str]:
        """Every exchange of a vhost: name -> type."""
        return self.call(_state.exchanges, self.broker, vhost)

    def topics(self) -> dict[str, int]:
        """Every Kafka topic: name -> partition count."""
        return self.call(_state.topics, self.broker)

    def records(self, topic: str, partition: int | None = None) -> list[Record]:
        """The records stored in a topic (one partition, or all in partition order).

        Raises:
            KeyError: No such topic.
        """
        return self.call(_state.read_records, self.broker, topic, partition)

    def committed_offsets(self, group: str) -> dict[tuple[str, int], int]:
        """A consumer group's committed offsets: (topic, partition) -> offset."""
        return self.call(_state.committed_offsets, self.broker, group)

    def group(self, group: str) -> GroupInfo:
        """A consumer group's state and members (with decoded assignments).

        Raises:
            KeyError: No such group.
        """
        return self.call(_state.group_info, self.broker, group)

    @property
    def addresses(self) -> Addresses:
        """Every listening address.

        Raises:
            RuntimeError: The server is not running.
        """
        if self._addresses is None:
            raise RuntimeError("wiregate server is not running")
        return self._addresses

    @property
    def host(self) -> str:
        """The address clients should connect to, e.g. ``"127.0.0.1"``."""
        return self.addresses.amqp[0]

    @property
    def amqp_port(self) -> int:
        """The AMQP port."""
        return self.addresses.amqp[1]

    @property
    def amqp_url(self) -> str:
        """A URL for AMQP clients: ``amqp://guest:guest@127.0.0.1:PORT/%2F``."""
        return f"amqp://guest:guest@{format_endpoint(self.addresses.amqp)}/%2F"

    @property
    def amqps_url(self) -> str | None:
        """``amqps://guest:guest@127.0.0.1:PORT/%2F``; ``None`` without a TLS listener."""
        amqps = self.addresses.amqps
        return None if amqps is None else f"amqps://guest:guest@{format_endpoint(amqps)}/%2F"

    @property
    def kafka_bootstrap(self) -> str | None:
        """``host:port`` for Kafka clients; ``None`` while Kafka is not available."""
        kafka = self.addresses.kafka
        return None if kafka is None else format_endpoint(kafka)

    @property
    def http_url(self) -> str:
        """The base URL of the HTTP API, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://{format_endpoint(self.addresses.http)}"

    def __enter__(self) -> Server:
        if self._thread is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.addresses.describe() if self._addresses is not None else "stopped"
        return f"<wiregate.testing.Server {where}>"

    def _run(self, ready: threading.Event) -> None:
        try:
            trio.run(self._main, ready)
        except BaseException as exc:
            self._error = exc
        finally:
            ready.set()

    async def _main(self, ready: threading.Event) -> None:
        self._token = trio.lowlevel.current_trio_token()
        gateway = Gateway(self.config, self.broker)
        async with trio.open_nursery() as nursery:
            try:
                addresses = await nursery.start(gateway.run)
            except Exception as exc:
                # Reported bare by start(), not wrapped in a group.
                self._error = exc
                return
            self._gateway = gateway
            self._addresses = addresses
            ready.set()


class AsyncServer:
    """A :class:`Server` for trio and asyncio applications (anyio on either backend).

    ::

        async with wiregate.testing.AsyncServer() as srv:
            connection = await aio_pika.connect(srv.amqp_url)

    The server still runs in its own thread with its own Trio loop, so it
    never competes with the application's loop and works the same under
    trio, asyncio and anyio.  Starting and stopping run in a worker thread,
    so they never block the caller's loop.  Everything else — URLs, the
    declaration and inspection methods, :attr:`faults` — is the wrapped
    :class:`Server`'s (those calls return within a millisecond).

    Args:
        **kwargs: The arguments of :class:`Server`.
    """

    def __init__(self, **kwargs: Any) -> None:
        self.server = Server(**kwargs)

    async def start(self) -> AsyncServer:
        """Start listening; return once every listener accepts."""
        await _off_loop(self.server.start)
        return self

    async def stop(self) -> None:
        """Shut down gracefully (see :meth:`Server.stop`)."""
        await _off_loop(self.server.stop)

    async def __aenter__(self) -> AsyncServer:
        if self.server._thread is None:
            await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.server, name)

    def __repr__(self) -> str:
        return repr(self.server).replace("Server", "AsyncServer", 1)


async def _off_loop(fn: Callable[[], Any]) -> Any:
    """Run a blocking call in a worker thread of whichever async library is running."""
    import sniffio

    library = sniffio.current_async_library()
    if library == "trio":
        return await trio.to_thread.run_sync(fn)
    if library == "asyncio":
        import asyncio

        return await asyncio.get_running_loop().run_in_executor(None, fn)
    raise RuntimeError(f"AsyncServer needs trio or asyncio, not {library}")


def server(**kwargs: Any) -> Server:
    """Create and start a :class:`Server`.

    ``with wiregate.testing.server() as srv:`` stops it on exit; otherwise
    call :meth:`Server.stop`.

    Args:
        **kwargs: Arguments of :class:`Server`.

    Returns:
        The running server.

    Raises:
        wiregate.gateway.ListenError: A port could not be opened.
    """
    return Server(**kwargs).start()
