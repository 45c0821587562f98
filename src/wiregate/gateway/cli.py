"""The ``wiregate`` command."""

from __future__ import annotations

import argparse
import gc
import logging
import signal
import sys
from pathlib import Path

import trio

import wiregate
from wiregate.gateway.config import Config
from wiregate.gateway.listeners import ListenError
from wiregate.gateway.memory import DEFAULT_WATERMARK, Watermark, parse_watermark
from wiregate.gateway.server import Addresses, Gateway

logger = logging.getLogger("wiregate.gateway")

_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def main(argv: list[str] | None = None) -> int:
    """Run the ``wiregate`` command line.

    ``wiregate serve`` prints exactly one line to stdout once every listener
    accepts, e.g. ``wiregate 0.1.0 ready amqp=127.0.0.1:5672,[::1]:5672
    http=127.0.0.1:15672,[::1]:15672``, and logs to stderr.  With
    ``--trace``, one line per decoded frame follows the ready line.  SIGINT
    or SIGTERM shut it down gracefully.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` when
            ``None``.

    Returns:
        The exit status: 0 after a clean shutdown (or ``--version``), 1 when
        a listener (or the ``--trace-file``) cannot be opened, 2 for a usage
        error.
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        # argparse exits for --version, --help and usage errors.
        return exc.code if isinstance(exc.code, int) else 2
    if args.command is None:
        parser.print_usage(sys.stderr)
        return 2
    config = Config(
        host=args.host,
        amqp_port=args.amqp_port,
        kafka_port=args.kafka_port,
        http_port=args.http_port,
        data_dir=args.data_dir,
        fsync=args.fsync,
        page_out_bytes=args.page_out_bytes,
        log_level=args.log_level,
        amqps_port=args.amqps_port,
        advertised_host=args.advertised_host,
        kafka_configs=tuple(args.kafka_config),
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        trace=args.trace,
        trace_file=args.trace_file,
        memory_high_watermark=args.memory_high_watermark,
        max_connections=args.max_connections,
        max_queues=args.max_queues,
    )
    logging.basicConfig(
        level=config.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    _tune_gc()
    return trio.run(_serve_until_signal, config)


#: cyclic-GC thresholds of the ``wiregate serve`` process (see _tune_gc)
SERVE_GC_THRESHOLDS = (10_000, 10, 100)


def _tune_gc() -> None:
    """Make the cyclic garbage collector cheap for a broker's heap.

    A queue holding many messages keeps several container objects per
    message alive; with CPython's default thresholds (700, 10, 10) every
    young collection is frequent and full collections walk all of them
    again and again: a 300 000-message backlog cost ~4 µs of GC per
    message published (bench/, in process). Collecting young objects every
    10 000 allocations and the oldest generation ten times less often
    brings that under 1 µs; objects alive at start-up (modules, classes)
    are frozen out of collection altogether.  Only the server's own
    process is tuned: the embedding API never touches an application's
    collector.
    """
    gc.freeze()
    gc.set_threshold(*SERVE_GC_THRESHOLDS)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wiregate",
        description="One server speaking AMQP 0-9-1 and the Kafka wire protocol over one core engine.",
    )
    parser.add_argument("--version", action="version", version=f"wiregate {wiregate.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the server until SIGINT or SIGTERM")
    serve.add_argument(
        "--host",
        default=None,
        help="address to listen on (default: 127.0.0.1 and ::1; 0.0.0.0 or :: for all)",
    )
    serve.add_argument("--amqp-port", type=_port, default=5672, help="AMQP port, 0 = any (default: %(default)s)")
    serve.add_argument("--kafka-port", type=_port, default=9092, help="Kafka port, 0 = any (default: %(default)s)")
    serve.add_argument("--http-port", type=_port, default=15672, help="HTTP API port, 0 = any (default: %(default)s)")
    serve.add_argument(
        "--advertised-host",
        default=None,
        help="host Kafka clients are told to connect to (default: the listen host, 127.0.0.1 for loopback/wildcard)",
    )
    serve.add_argument(
        "--kafka-config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        type=_key_value,
        help="a static Kafka broker config, as in server.properties (repeatable)",
    )
    serve.add_argument("--amqps-port", type=_port, default=None, help="AMQP over TLS port, 0 = any (default: no TLS listener)")
    serve.add_argument("--tls-cert", type=Path, default=None, help="PEM certificate for TLS (default: a bundled self-signed test certificate)")
    serve.add_argument("--tls-key", type=Path, default=None, help="PEM private key of --tls-cert")
    serve.add_argument("--data-dir", type=Path, default=None, help="directory for durable state (default: everything in memory)")
    serve.add_argument(
        "--fsync",
        choices=("always", "batch", "never"),
        default="batch",
        help="with --data-dir: fsync every write, group-commit every few ms, or leave it to the OS (default: %(default)s)",
    )
    serve.add_argument(
        "--page-out-bytes",
        type=int,
        default=64 * 1024 * 1024,
        metavar="BYTES",
        help="with --data-dir: a queue's ready bodies past this many bytes are kept on disk (default: 64 MiB)",
    )
    serve.add_argument(
        "--memory-high-watermark",
        type=_watermark,
        default=DEFAULT_WATERMARK,
        metavar="FRACTION|SIZE",
        help="past this much memory held by messages and records, AMQP publishers are blocked (connection.blocked) and "
        "Kafka Produce is throttled: a fraction of RAM (0.4), a size (512MiB, 2GB) or off (default: %(default)s)",
    )
    serve.add_argument(
        "--max-connections",
        type=_count,
        default=None,
        metavar="N",
        help="client connections allowed per protocol (RabbitMQ's connection_max; AMQP past it gets 530 at connection.open, "
        "Kafka is closed) (default: unlimited)",
    )
    serve.add_argument(
        "--max-queues",
        type=_count,
        default=None,
        metavar="N",
        help="queues allowed per vhost (RabbitMQ's max-queues vhost limit; past it queue.declare gets 406) (default: unlimited)",
    )
    serve.add_argument("--log-level", choices=_LOG_LEVELS, default="info", help="(default: %(default)s)")
    serve.add_argument(
        "--trace",
        action="store_true",
        help="print every AMQP frame and Kafka request/response, decoded, one line each on stdout after the ready line "
        "(coloured on a terminal; NO_COLOR and FORCE_COLOR are honoured); GET /api/trace streams the same as server-sent events",
    )
    serve.add_argument(
        "--trace-file",
        type=Path,
        default=None,
        metavar="PATH",
        help="write the same trace events as JSON lines to PATH (created or truncated)",
    )
    return parser


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def _watermark(text: str) -> Watermark | None:
    try:
        return parse_watermark(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {value}")
    return value


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range: {port}")
    return port


def _print_ready_line(addresses: Addresses) -> None:
    # Called by the gateway before any --trace line is written.
    print(f"wiregate {wiregate.__version__} ready {addresses.describe()}", flush=True)


async def _serve_until_signal(config: Config) -> int:
    gateway = Gateway(config, on_ready=_print_ready_line)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            try:
                await nursery.start(gateway.run)
            except ListenError as exc:
                logger.error("%s", exc)
                return 1
            except OSError as exc:  # e.g. the --trace-file cannot be opened
                logger.error("%s", exc)
                return 1
            async for signum in signals:
                logger.info("received %s", signal.Signals(signum).name)
                gateway.shutdown()
                break
    return 0
