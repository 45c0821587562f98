"""The Trio server: listeners, one task set per connection, graceful shutdown."""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from wiregate import kafka_wire
from wiregate.amqp import AMQPConnection
from wiregate.amqp.properties import PropertyBlock
from wiregate.core import Broker
from wiregate.gateway.config import Config
from wiregate.gateway.connection import ConnectionFactory, ConnectionHandler
from wiregate.gateway.http import serve_http
from wiregate.gateway.listeners import format_endpoint, open_listeners
from wiregate.gateway.memory import MemoryMonitor
from wiregate.gateway.trace import JSONLinesSink, TracePrinter, Tracer

if TYPE_CHECKING:
    from wiregate.storage import DataDir

logger = logging.getLogger("wiregate.gateway")

#: --fsync batch: writes collected this long before one fsync covers them
GROUP_COMMIT_WINDOW = 0.002

Endpoint = tuple[str, int]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Addresses:
    """Where a running gateway accepts connections.

    Attributes:
        amqp: ``(host, port)`` of the first AMQP listener.
        amqps: ``(host, port)`` of the first AMQP-over-TLS listener, ``None``
            when TLS is not enabled.
        http: ``(host, port)`` of the first HTTP listener.
        kafka: ``(host, port)`` of the first Kafka listener, ``None`` while
            the Kafka wire protocol is not available.
        bound: Every listening ``(host, port)`` per protocol name; all
            listeners of one protocol share the port number.
    """

    amqp: Endpoint
    http: Endpoint
    kafka: Endpoint | None
    bound: dict[str, tuple[Endpoint, ...]]
    amqps: Endpoint | None = None

    def describe(self) -> str:
        """Return ``amqp=host:port,... http=...`` as printed in the ready line.

        Returns:
            One space-separated ``protocol=endpoints`` item per protocol.
        """
        return " ".join(
            f"{protocol}=" + ",".join(format_endpoint(endpoint) for endpoint in endpoints)
            for protocol, endpoints in self.bound.items()
        )


def tls_context(config: Config) -> ssl.SSLContext:
    """The server-side TLS context of the TLS listeners.

    Args:
        config: ``tls_cert`` and ``tls_key``; when either is missing, the
            self-signed ``localhost`` test certificate shipped with
            :mod:`wiregate.testing` is used (its private key is public: for
            tests only), and a warning is logged.

    Returns:
        A context for ``trio.SSLStream(..., server_side=True)``.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    if config.tls_cert is not None and config.tls_key is not None:
        context.load_cert_chain(str(config.tls_cert), str(config.tls_key))
        return context
    logger.warning("TLS listener uses the bundled self-signed test certificate (CN=localhost); pass --tls-cert/--tls-key outside tests")
    from importlib import resources  # only for the bundled test certificate (~10 ms of start-up otherwise)

    bundled = resources.files("wiregate.testing") / "tls"
    with resources.as_file(bundled / "localhost.crt") as cert, resources.as_file(bundled / "localhost.key") as key:
        context.load_cert_chain(str(cert), str(key))
    return context


def advertised_host(config: Config) -> str:
    """The host Kafka clients are told to connect to (Metadata's brokers).

    ``--advertised-host`` when given; else the listen host, with loopback
    ``127.0.0.1`` standing for the default (both loopbacks) and for the
    wildcard addresses, which a client cannot connect to.
    """
    if config.advertised_host:
        return config.advertised_host
    if config.host in (None, "localhost", "0.0.0.0", "::", ""):
        return "127.0.0.1"
    return config.host


def kafka_connection_class() -> ConnectionFactory | None:
    """Return ``wiregate.kafka_wire.KafkaConnection`` if it exists yet.

    Returns:
        The class, or ``None`` when the Kafka wire protocol is not available.
    """
    return getattr(kafka_wire, "KafkaConnection", None)


class Gateway:
    """One server: AMQP, HTTP and (when available) Kafka listeners over one broker.

    Typical use from Trio::

        gateway = Gateway(Config(amqp_port=0, http_port=0))
        addresses = await nursery.start(gateway.run)
        ...
        gateway.shutdown()   # run() returns once clients are gone

    Args:
        config: What to listen on.  ``config.trace`` prints the decoded
            frame trace to stdout (held back until ``on_ready`` returned),
            ``config.trace_file`` writes it as JSON lines.
        broker: The core broker to serve; a new ``wiregate.core.Broker``
            when ``None``.
        on_ready: Called synchronously with the :class:`Addresses` once
            every listener accepts, before ``task_status.started`` and
            before any trace line is printed (the command prints its ready
            line here).

    Attributes:
        config: The configuration given.
        broker: The core broker.
        addresses: Where the gateway listens; ``None`` until ready.
        ready: True from the moment every listener accepts until shutdown.
        tracer: The decoded-frame trace (:class:`wiregate.gateway.trace.Tracer`):
            ``tracer.add_sink(fn)`` calls ``fn(event)`` in the server's Trio
            thread for every AMQP frame, Kafka request and response,
            connection open/close and injected fault; ``remove_sink(fn)``
            stops it.  Tracing costs nothing while no sink is registered.
    """

    def __init__(
        self,
        config: Config,
        broker: object | None = None,
        *,
        on_ready: Callable[[Addresses], None] | None = None,
    ) -> None:
        if broker is None:
            broker = Broker()
        # the group coordinator reads this very dict, so update it in place
        broker.kafka_configs.update(config.kafka_configs)  # type: ignore[attr-defined]
        if config.max_queues is not None:
            broker.vhost_limits["max-queues"] = config.max_queues  # type: ignore[attr-defined]
        self.config = config
        self.broker = broker
        self.addresses: Addresses | None = None
        self.ready = False
        self._handlers: set[ConnectionHandler] = set()
        self._shutdown_requested = trio.Event()
        self._on_ready = on_ready
        self.tracer = Tracer(broker)
        #: the memory high watermark (raises the broker's alarm by itself)
        self.memory = MemoryMonitor(broker, config.memory_high_watermark, connections=self._protocol_connections)

    @property
    def listeners(self) -> list[tuple[str, str, int]]:
        """``(protocol, host, port)`` of every listener; empty before ready."""
        if self.addresses is None:
            return []
        return [
            (protocol, host, port)
            for protocol, endpoints in self.addresses.bound.items()
            for host, port in endpoints
        ]

    @property
    def connection_count(self) -> dict[str, int]:
        """Open client connections per protocol (HTTP not counted)."""
        counts = dict.fromkeys(self.addresses.bound if self.addresses else (), 0)
        counts.pop("http", None)
        for handler in self._handlers:
            counts[handler.protocol] = counts.get(handler.protocol, 0) + 1
        return counts

    async def run(self, *, task_status: trio.TaskStatus[Addresses] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen and serve until :meth:`shutdown` completes or the task is cancelled.

        Every listener is accepting before ``task_status.started(addresses)``
        is called, so a reported port is a ready port.  Cancellation drops all
        connections at once (each still gets ``connection_lost()``).

        Args:
            task_status: Receives the :class:`Addresses` when ready.

        Raises:
            wiregate.gateway.ListenError: A listener could not be opened (e.g.
                the port is in use); nothing is left listening.
            OSError: ``config.trace_file`` could not be opened.
        """
        trace_sinks = self._config_trace_sinks()
        try:
            await self._run(task_status, trace_sinks)
        finally:
            for sink in trace_sinks:
                self.tracer.remove_sink(sink)
                close = getattr(sink, "close", None)
                if close is not None:
                    close()

    def _config_trace_sinks(self) -> list[Any]:
        # --trace-file first: opening it may fail, before anything listens.
        sinks: list[Any] = []
        if self.config.trace_file is not None:
            try:
                sinks.append(JSONLinesSink(self.config.trace_file))
            except OSError as exc:
                raise OSError(exc.errno, f"cannot open the trace file: {exc.strerror}", str(self.config.trace_file)) from None
        if self.config.trace:
            sinks.append(TracePrinter(hold=True))
        for sink in sinks:
            self.tracer.add_sink(sink)
        return sinks

    async def _run(self, task_status: trio.TaskStatus[Addresses], trace_sinks: list[Any]) -> None:
        config = self.config
        datadir = self._open_data_dir()
        try:
            await self._serve(task_status, trace_sinks, datadir)
        finally:
            if datadir is not None:
                datadir.sync_now()
                datadir.close()

    def _open_data_dir(self) -> DataDir | None:
        # Recovery comes before any listener opens: a ready port never
        # serves a half-loaded broker.
        config = self.config
        if config.data_dir is None:
            return None
        existing = getattr(self.broker, "persistence", None)
        if existing is not None:
            return existing  # a restarted embedded server keeps its broker and its directory
        from wiregate.storage import DataDir  # only with a data directory

        datadir = DataDir(config.data_dir, config.fsync, config.page_out_bytes)
        started = time.monotonic()
        counts = datadir.recover(self.broker, PropertyBlock)  # type: ignore[arg-type]
        logger.info(
            "data dir %s (fsync %s): recovered %s in %.0f ms",
            config.data_dir,
            config.fsync,
            ", ".join(f"{value} {name}" for name, value in counts.items()),
            (time.monotonic() - started) * 1000,
        )
        return datadir

    async def _group_commit(self, datadir: DataDir) -> None:
        # --fsync batch: writes go to the OS at once; one fsync covers all
        # written since the last, in a worker thread, and then the confirms
        # and acks=all answers that waited for it go out.
        wake = trio.Event()

        def on_dirty() -> None:
            wake.set()

        datadir.on_dirty = on_dirty
        try:
            while True:
                await wake.wait()
                wake = trio.Event()
                await trio.sleep(GROUP_COMMIT_WINDOW)
                sequence, files, directories = datadir.take_dirty()
                await trio.to_thread.run_sync(datadir.fsync, files, directories)
                datadir.mark_synced(sequence)
        finally:
            datadir.on_dirty = None

    async def _serve(self, task_status: trio.TaskStatus[Addresses], trace_sinks: list[Any], datadir: DataDir | None) -> None:
        config = self.config
        kafka_factory = kafka_connection_class()
        listeners = {"amqp": await open_listeners(config.host, config.amqp_port)}
        try:
            if kafka_factory is not None:
                listeners["kafka"] = await open_listeners(config.host, config.kafka_port)
            else:
                logger.info("Kafka wire protocol not available yet; not listening on port %d", config.kafka_port)
            if config.amqps_port is not None:
                listeners["amqps"] = await open_listeners(config.host, config.amqps_port)
            listeners["http"] = await open_listeners(config.host, config.http_port)
        except BaseException:
            for group in listeners.values():
                for listener in group:
                    listener.socket.close()
            raise
        bound = {
            protocol: tuple(listener.socket.getsockname()[:2] for listener in group)
            for protocol, group in listeners.items()
        }
        amqp_factory = functools.partial(AMQPConnection, connection_max=config.max_connections)
        handlers = {
            "amqp": functools.partial(
                self._serve_connection,
                protocol="amqp",
                factory=amqp_factory,
                handshake_timeout=config.handshake_timeout,
            ),
            "http": functools.partial(serve_http, source=self),
        }
        if "amqps" in listeners:
            handlers["amqps"] = functools.partial(
                self._serve_tls_connection,
                tls=tls_context(config),
                protocol="amqp",
                factory=amqp_factory,
                handshake_timeout=config.handshake_timeout,
            )
        if kafka_factory is not None:
            handlers["kafka"] = functools.partial(
                self._serve_connection,
                protocol="kafka",
                factory=functools.partial(kafka_factory, advertised=(advertised_host(config), bound["kafka"][0][1])),
                handshake_timeout=None,
            )
        async with trio.open_nursery() as connections:
            connections.start_soon(self._run_timers)
            connections.start_soon(self.memory.run)
            if datadir is not None and datadir.policy == "batch":
                connections.start_soon(self._group_commit, datadir)
            with trio.CancelScope() as accepting:
                async with trio.open_nursery() as acceptors:
                    for protocol, group in listeners.items():
                        await acceptors.start(
                            functools.partial(trio.serve_listeners, handler_nursery=connections),
                            handlers[protocol],
                            group,
                        )
                    self.addresses = Addresses(
                        amqp=bound["amqp"][0],
                        http=bound["http"][0],
                        kafka=bound["kafka"][0] if "kafka" in bound else None,
                        amqps=bound["amqps"][0] if "amqps" in bound else None,
                        bound=bound,
                    )
                    self.ready = True
                    logger.info("ready %s", self.addresses.describe())
                    if self._on_ready is not None:
                        self._on_ready(self.addresses)
                    for sink in trace_sinks:
                        if isinstance(sink, TracePrinter):
                            sink.release()
                    task_status.started(self.addresses)
                    await self._shutdown_requested.wait()
                    # Stop accepting first so that no connection slips in
                    # after the others were told to leave.
                    self.ready = False
                    accepting.cancel()
            await self._close_connections()
            connections.cancel_scope.cancel()
        logger.info("stopped")

    def shutdown(self) -> None:
        """Start a graceful shutdown; :meth:`run` returns when it is done.

        Listeners close at once, every AMQP client is sent
        ``connection.close`` 320 (CONNECTION_FORCED) and given
        ``config.shutdown_grace`` seconds to answer; whatever remains is then
        dropped.  Must be called from the gateway's Trio thread; calling it
        again has no further effect.
        """
        if not self._shutdown_requested.is_set():
            logger.info("shutting down")
        self._shutdown_requested.set()
        self.tracer.close()

    def _protocol_connections(self) -> list[object]:
        # the sans-IO objects, whose output backlogs count towards the watermark
        return [handler.protocol_connection for handler in self._handlers if handler.protocol_connection is not None]

    def set_memory_high_watermark(self, watermark: object) -> None:
        """Change the memory high watermark while running (tests); samples at once.

        Args:
            watermark: As ``Config.memory_high_watermark`` (a fraction, bytes,
                ``"512MiB"``, ``None`` for none).  Must be called from the
                gateway's Trio thread.

        Raises:
            ValueError: Not a watermark.
        """
        self.memory.set_watermark(watermark)

    async def _run_timers(self) -> None:
        # The core records deadlines (message TTL, queue expiry) but never
        # sleeps: wake at the earliest one, or when an earlier one is added.
        scheduler = self.broker.scheduler
        changed = trio.Event()

        def on_change() -> None:
            changed.set()

        scheduler.on_change = on_change
        try:
            while True:
                deadline = scheduler.next_deadline()
                # The scheduler has its own clock (time.monotonic), not trio's.
                delay = math.inf if deadline is None else max(0.0, deadline - scheduler.now())
                with trio.move_on_after(delay):
                    await changed.wait()
                changed = trio.Event()
                try:
                    scheduler.run_due()
                except Exception as exc:
                    # The failing timer is already removed; the others still run.
                    logger.error("timer callback failed: %s: %s", type(exc).__name__, exc)
                    logger.debug("traceback of the failure above", exc_info=exc)
        finally:
            scheduler.on_change = None

    async def _close_connections(self) -> None:
        handlers = list(self._handlers)
        for handler in handlers:
            handler.shutdown()
        with trio.move_on_after(self.config.shutdown_grace):
            for handler in handlers:
                await handler.done.wait()

    async def _serve_tls_connection(self, stream: trio.SocketStream, *, tls: ssl.SSLContext, **kwargs: Any) -> None:
        # The TLS handshake happens on the first read; a client that does not
        # speak TLS shows up as a broken stream and is closed like an EOF.
        await self._serve_connection(trio.SSLStream(stream, tls, server_side=True), **kwargs)  # type: ignore[arg-type]

    async def _serve_connection(
        self,
        stream: trio.SocketStream,
        *,
        protocol: str,
        factory: ConnectionFactory,
        handshake_timeout: float | None,
    ) -> None:
        idle_timeout = None
        if protocol == "kafka":
            configs = self.broker.kafka_configs  # type: ignore[attr-defined]
            limit = _int_config(configs.get("max.connections"), self.config.max_connections)
            if limit is not None and sum(h.protocol == "kafka" for h in self._handlers) >= limit:
                # Kafka's max.connections: the new connection is closed at once
                logger.warning("kafka connection refused: %d connections open (max.connections)", limit)
                await trio.aclose_forcefully(stream)
                return
            # Kafka's connections.max.idle.ms (default 10 minutes); it also
            # bounds a request that stops arriving halfway
            idle_ms = _int_config(configs.get("connections.max.idle.ms"), 600000)
            idle_timeout = idle_ms / 1000 if idle_ms is not None and idle_ms > 0 else None
        # trio's SocketStream enables TCP_NODELAY on every accepted socket.
        handler = ConnectionHandler(
            stream,
            protocol=protocol,
            factory=factory,
            broker=self.broker,
            handshake_timeout=handshake_timeout,
            idle_timeout=idle_timeout,
        )
        self._handlers.add(handler)
        self.tracer.register(handler)
        try:
            await handler.run()
        finally:
            self._handlers.discard(handler)
            self.tracer.unregister(handler)


def _int_config(value: object, default: int | None) -> int | None:
    """An integer broker config (Kafka's names); ``default`` when unset or not a number."""
    if value is None:
        return default
    try:
        return int(str(value))
    except ValueError:
        return default


async def serve(
    config: Config,
    *,
    broker: object | None = None,
    task_status: trio.TaskStatus[Addresses] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run a :class:`Gateway` until cancelled.

    For a graceful shutdown (AMQP clients see ``connection.close`` 320), use
    :class:`Gateway` and its :meth:`Gateway.shutdown` instead.

    Args:
        config: What to listen on.
        broker: The core broker to serve; a new one when ``None``.
        task_status: Receives the :class:`Addresses` once every listener
            accepts.

    Raises:
        wiregate.gateway.ListenError: A listener could not be opened.
    """
    await Gateway(config, broker).run(task_status=task_status)
