"""Settings of one wiregate server process."""

from __future__ import annotations

import dataclasses
from pathlib import Path


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    """What a :class:`~wiregate.gateway.Gateway` listens on and how it behaves.

    Attributes:
        host: Address or host name to listen on.  ``None`` or ``"localhost"``
            means both loopback addresses, ``127.0.0.1`` and ``::1``, on one
            shared port number per protocol.  ``"0.0.0.0"`` and ``"::"`` are
            allowed.
        amqp_port: AMQP 0-9-1 port; 0 lets the kernel pick.
        kafka_port: Kafka port; 0 lets the kernel pick.  Only used once
            :mod:`wiregate.kafka_wire` provides a ``KafkaConnection``.
        http_port: Port of the small HTTP API (health, overview); 0 lets the
            kernel pick.
        data_dir: Directory for durable state.  Accepted and stored; the
            server keeps everything in memory until persistence exists.
        log_level: Name of a :mod:`logging` level, e.g. ``"info"``.
        advertised_host: Host name Kafka clients are told to connect to;
            ``None`` means the listening address.
        amqps_port: AMQP over TLS port (RabbitMQ's 5671); ``None`` (the
            default) means no TLS listener, 0 lets the kernel pick.
        tls_cert: PEM certificate (chain) for TLS listeners.
        tls_key: PEM private key for ``tls_cert``.  Without both, a TLS
            listener uses the self-signed ``localhost`` certificate shipped in
            :mod:`wiregate.testing` (tests only: its key is public).
        kafka_configs: Static Kafka broker configs (``KEY=VALUE`` pairs, as
            in Kafka's server.properties) applied to the broker at start.
        handshake_timeout: Seconds a client has from TCP connect to a
            completed AMQP ``connection.open`` (RabbitMQ's
            ``handshake_timeout``, also 10 s there).
        shutdown_grace: Seconds a graceful shutdown waits for clients to
            acknowledge ``connection.close`` before dropping them.
        trace: Print every decoded AMQP frame and Kafka request/response to
            stdout, one readable line each (coloured on a terminal; NO_COLOR
            and FORCE_COLOR are honoured), after the ready line.
        trace_file: Write the same trace events as JSON lines to this file
            (created or truncated).
        memory_high_watermark: Past this much memory held by messages and
            records the broker raises its memory alarm (AMQP publishers get
            ``connection.blocked``, Kafka Produce is throttled), as
            RabbitMQ's ``vm_memory_high_watermark``: a float is a fraction
            of the machine's memory, an int is bytes, a string is parsed
            (``"0.4"``, ``"512MiB"``, ``"2GB"``, ``"off"``); ``None`` means
            no watermark.  See :mod:`wiregate.gateway.memory`.
        max_connections: Client connections allowed per protocol
            (RabbitMQ's ``connection_max``, unlimited by default).  Past it,
            AMQP ``connection.open`` is refused with 530 "connection
            refused: node connection limit (N) is reached", as RabbitMQ
            does; a Kafka connection is closed at once (``--kafka-config
            max.connections=N``, Kafka's name, overrides it for Kafka).
        max_queues: Queues allowed per vhost (RabbitMQ's ``max-queues``
            vhost limit, unlimited by default); a queue.declare past it is
            refused with 406 "cannot declare queue 'q': queue limit in
            vhost '/' (N) is reached".
    """

    host: str | None = None
    amqp_port: int = 5672
    kafka_port: int = 9092
    http_port: int = 15672
    data_dir: Path | None = None
    fsync: str = "batch"
    page_out_bytes: int = 64 * 1024 * 1024
    log_level: str = "info"
    advertised_host: str | None = None
    amqps_port: int | None = None
    kafka_configs: tuple[tuple[str, str], ...] = ()
    tls_cert: Path | None = None
    tls_key: Path | None = None
    handshake_timeout: float = 10.0
    shutdown_grace: float = 1.0
    trace: bool = False
    trace_file: Path | None = None
    memory_high_watermark: float | int | str | None = 0.2
    max_connections: int | None = None
    max_queues: int | None = None
