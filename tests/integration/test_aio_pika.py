"""aio-pika (over aiormq and pamqp) against wiregate.

The tests are plain functions that run their coroutine with ``asyncio.run``,
so no asyncio pytest plugin is needed.
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aio_pika
import aio_pika.abc
import aio_pika.exceptions
import aiormq.exceptions
import pytest

import wiregate.testing

T = TypeVar("T")
TIMEOUT = 10.0


def run(test: Callable[..., Awaitable[T]]) -> Callable[..., T]:
    """Run an async test body in a fresh event loop, with a timeout."""

    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        async def bounded() -> T:
            return await asyncio.wait_for(test(*args, **kwargs), TIMEOUT)

        return asyncio.run(bounded())

    return wrapper


def robust_url(amqp_url: str) -> str:
    return f"{amqp_url}?reconnect_interval=0.1"


async def take(queue: aio_pika.abc.AbstractQueue, count: int, *, ack: bool = True) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """The next ``count`` messages from an iterator consumer, acked (or left unacked)."""
    taken = []
    async with queue.iterator() as messages:
        async for message in messages:
            if ack:
                await message.ack()
            taken.append(message)
            if len(taken) == count:
                break
    return taken


@run
async def test_connect_robust_declare_publish_and_iterate(amqp_url: str, unique: str) -> None:
    connection = await aio_pika.connect_robust(robust_url(amqp_url))
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(f"{unique}.x", aio_pika.ExchangeType.TOPIC, auto_delete=True)
        queue = await channel.declare_queue(f"{unique}.q", auto_delete=True)
        await queue.bind(exchange, "orders.#")
        for i in range(5):
            await exchange.publish(aio_pika.Message(f"m{i}".encode(), message_id=str(i)), routing_key=f"orders.eu.{i}")
        await exchange.publish(aio_pika.Message(b"skipped"), routing_key="invoices.eu", mandatory=False)

        received = await take(queue, 5)
        assert [message.body for message in received] == [f"m{i}".encode() for i in range(5)]
        assert [message.routing_key for message in received] == [f"orders.eu.{i}" for i in range(5)]
        assert {message.exchange for message in received} == {f"{unique}.x"}
        assert not any(message.redelivered for message in received)
        declared = await channel.declare_queue(f"{unique}.q", passive=True)
        assert declared.declaration_result.message_count == 0


@run
async def test_nack_requeue_redelivers_and_reject_drops(amqp_url: str, unique: str) -> None:
    async with await aio_pika.connect(amqp_url) as connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(f"{unique}.q", exclusive=True)
        for body in (b"a", b"b", b"c"):
            await channel.default_exchange.publish(aio_pika.Message(body), routing_key=queue.name)

        first = await take(queue, 3, ack=False)
        await first[0].nack(requeue=True)
        await first[1].reject(requeue=False)
        await first[2].nack(requeue=True)

        again = await take(queue, 2)
        assert [(message.body, message.redelivered) for message in again] == [(b"a", True), (b"c", True)]
        assert await queue.get(fail=False, timeout=1) is None


@run
async def test_message_process_context_acks_or_rejects(amqp_url: str, unique: str) -> None:
    async with await aio_pika.connect(amqp_url) as connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(f"{unique}.q", exclusive=True)
        await channel.default_exchange.publish(aio_pika.Message(b"fails once"), routing_key=queue.name)

        message = await queue.get(timeout=5)
        with pytest.raises(RuntimeError):
            async with message.process(requeue=True):
                raise RuntimeError("handler failed")
        message = await queue.get(timeout=5)
        assert message.redelivered
        async with message.process():
            pass
        assert await queue.get(fail=False, timeout=1) is None


@run
async def test_get_on_empty_queue_raises_queue_empty(amqp_url: str, unique: str) -> None:
    async with await aio_pika.connect(amqp_url) as connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(f"{unique}.q", exclusive=True)
        with pytest.raises(aio_pika.exceptions.QueueEmpty):
            await queue.get(timeout=5)
        await channel.default_exchange.publish(aio_pika.Message(b"x"), routing_key=queue.name)
        message = await queue.get(no_ack=True, timeout=5)
        assert message.body == b"x"
        assert message.message_count == 0
        with pytest.raises(aio_pika.exceptions.QueueEmpty):
            await queue.get(timeout=5)


@run
async def test_rpc_with_reply_queue_and_correlation_id(amqp_url: str, unique: str) -> None:
    async with await aio_pika.connect(amqp_url) as connection:
        server_channel = await connection.channel()
        requests = await server_channel.declare_queue(f"{unique}.rpc", auto_delete=True)

        async def serve(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with message.process():
                number = int(message.body)
                await server_channel.default_exchange.publish(
                    aio_pika.Message(str(number * number).encode(), correlation_id=message.correlation_id),
                    routing_key=message.reply_to,
                )

        await requests.consume(serve)

        client_channel = await connection.channel()
        replies = await client_channel.declare_queue("", exclusive=True)
        assert replies.name.startswith("amq.gen-")
        futures: dict[str, asyncio.Future[bytes]] = {}

        async def on_reply(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            futures.pop(message.correlation_id).set_result(message.body)

        await replies.consume(on_reply, no_ack=True)
        loop = asyncio.get_running_loop()
        for number in range(1, 6):
            futures[f"call-{number}"] = loop.create_future()
        waiting = {key: future for key, future in futures.items()}
        for number in range(1, 6):
            await client_channel.default_exchange.publish(
                aio_pika.Message(str(number).encode(), correlation_id=f"call-{number}", reply_to=replies.name),
                routing_key=requests.name,
            )
        results = {key: await future for key, future in waiting.items()}
        assert results == {f"call-{n}": str(n * n).encode() for n in range(1, 6)}


@run
async def test_direct_reply_to_pseudo_queue(amqp_url: str, unique: str) -> None:
    async with await aio_pika.connect(amqp_url) as connection:
        server_channel = await connection.channel()
        requests = await server_channel.declare_queue(f"{unique}.rpc", auto_delete=True)

        async def serve(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            assert message.reply_to is not None and message.reply_to.startswith("amq.rabbitmq.reply-to.")
            await server_channel.default_exchange.publish(aio_pika.Message(b"pong:" + message.body), routing_key=message.reply_to)

        await requests.consume(serve, no_ack=True)
        client_channel = await connection.channel()
        reply_queue = await client_channel.get_queue("amq.rabbitmq.reply-to", ensure=False)
        replied: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        async def on_reply(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            replied.set_result(message.body)

        await reply_queue.consume(on_reply, no_ack=True)
        await client_channel.default_exchange.publish(
            aio_pika.Message(b"ping", reply_to="amq.rabbitmq.reply-to"), routing_key=requests.name
        )
        assert await replied == b"pong:ping"


@run
async def test_transactions_commit_and_rollback(amqp_url: str, unique: str) -> None:
    async with await aio_pika.connect(amqp_url) as connection:
        channel = await connection.channel(publisher_confirms=False)
        queue = await channel.declare_queue(f"{unique}.q", auto_delete=False)
        observer = await connection.channel()
        try:
            async with channel.transaction():
                await channel.default_exchange.publish(aio_pika.Message(b"committed"), routing_key=queue.name)
                assert (await observer.declare_queue(queue.name, passive=True)).declaration_result.message_count == 0
            assert (await observer.declare_queue(queue.name, passive=True)).declaration_result.message_count == 1

            transaction = channel.transaction()
            await transaction.select()
            await channel.default_exchange.publish(aio_pika.Message(b"rolled back"), routing_key=queue.name)
            await transaction.rollback()
            assert (await observer.declare_queue(queue.name, passive=True)).declaration_result.message_count == 1
        finally:
            await observer.queue_delete(queue.name)


@run
async def test_publisher_confirms_and_mandatory_return(amqp_url: str, unique: str) -> None:
    async with await aio_pika.connect(amqp_url) as connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        queue = await channel.declare_queue(f"{unique}.q", exclusive=True)
        confirmation = await channel.default_exchange.publish(aio_pika.Message(b"routed"), routing_key=queue.name)
        assert isinstance(confirmation, aiormq.spec.Basic.Ack)
        with pytest.raises(aio_pika.exceptions.DeliveryError) as returned:
            await channel.default_exchange.publish(aio_pika.Message(b"unroutable"), routing_key=f"{unique}.nowhere", mandatory=True)
        assert returned.value.message.body == b"unroutable"
        assert isinstance(returned.value.frame, aiormq.spec.Basic.Return)
        assert (returned.value.frame.reply_code, returned.value.frame.reply_text) == (312, "NO_ROUTE")


@run
async def test_header_value_types_round_trip(amqp_url: str, unique: str) -> None:
    headers = {
        "float": 1.5,
        "int8": -7,
        "int16": 300,
        "int32": 70000,
        "int64": 2**40,
        "decimal": decimal.Decimal("3.14"),
        "datetime": datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone.utc),
        "bool": True,
        "none": None,
        "str": "text ✓",
        "nested": {"list": [1, "two", 3.5, {"deep": False}], "empty": {}},
    }
    async with await aio_pika.connect(amqp_url) as connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(f"{unique}.q", exclusive=True)
        sent = aio_pika.Message(
            b"typed",
            headers=headers,
            content_type="text/plain",
            content_encoding="utf-8",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            priority=3,
            correlation_id="c",
            reply_to="r",
            expiration=60,
            message_id="m",
            timestamp=datetime.datetime(2024, 5, 1, tzinfo=datetime.timezone.utc),
            type="t",
            user_id="guest",
            app_id="a",
        )
        await channel.default_exchange.publish(sent, routing_key=queue.name)
        message = await queue.get(no_ack=True, timeout=5)
    assert message.headers == headers
    assert {key: type(value) for key, value in message.headers.items()} == {key: type(value) for key, value in headers.items()}
    assert message.info()["headers"] == headers
    for field in ("content_type", "content_encoding", "delivery_mode", "priority", "correlation_id", "reply_to", "message_id", "timestamp", "type", "user_id", "app_id"):
        assert getattr(message, field) == getattr(sent, field), field
    assert message.expiration == 60


@run
async def test_channel_errors_raise_typed_exceptions(amqp_url: str, unique: str) -> None:
    async with await aio_pika.connect(amqp_url) as connection:
        channel = await connection.channel()
        with pytest.raises(aio_pika.exceptions.ChannelNotFoundEntity) as missing:
            await channel.declare_queue(f"{unique}.missing", passive=True)
        assert missing.value.args[0] == f"NOT_FOUND - no queue '{unique}.missing' in vhost '/'"

        await channel.reopen()
        await channel.declare_queue(f"{unique}.q", durable=False)
        with pytest.raises(aio_pika.exceptions.ChannelPreconditionFailed) as mismatch:
            await channel.declare_queue(f"{unique}.q", durable=True)
        assert mismatch.value.args[0] == (
            f"PRECONDITION_FAILED - inequivalent arg 'durable' for queue '{unique}.q' in vhost '/': received 'true' but current is 'false'"
        )

        fresh = await connection.channel()
        queue = await fresh.declare_queue(f"{unique}.q", passive=True)
        assert queue.name == f"{unique}.q"
        await queue.delete()


@run
async def test_robust_connection_recovers_topology_and_consumer(amqp_url: str, unique: str) -> None:
    connection = await aio_pika.connect_robust(robust_url(amqp_url))
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(f"{unique}.q", auto_delete=True)
        received: asyncio.Queue[bytes] = asyncio.Queue()

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            await message.ack()
            await received.put(message.body)

        await queue.consume(on_message)
        await channel.default_exchange.publish(aio_pika.Message(b"before"), routing_key=queue.name)
        assert await received.get() == b"before"

        reconnected = asyncio.Event()
        connection.reconnect_callbacks.add(lambda *_args: reconnected.set())
        # A hard error (540, prefetch_size is not implemented) makes the broker close the connection.
        # The raw aiormq channel is one aio-pika will not restore (and so not repeat the error).
        breaker = await connection.transport.connection.channel()
        with pytest.raises(aiormq.exceptions.AMQPError):
            await breaker.basic_qos(prefetch_size=1)
        await reconnected.wait()

        publisher = await connection.channel()
        await publisher.default_exchange.publish(aio_pika.Message(b"after"), routing_key=queue.name)
        assert await received.get() == b"after"


def test_robust_connection_survives_a_server_restart() -> None:
    first = wiregate.testing.Server(shutdown_grace=0.2).start()
    port = first.amqp_port
    second: wiregate.testing.Server | None = None

    async def main() -> None:
        nonlocal second
        connection = await aio_pika.connect_robust(robust_url(first.amqp_url))
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue("restart.q")
            received: asyncio.Queue[bytes] = asyncio.Queue()

            async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                await message.ack()
                await received.put(message.body)

            await queue.consume(on_message)
            await channel.default_exchange.publish(aio_pika.Message(b"before"), routing_key="restart.q")
            assert await received.get() == b"before"

            reconnected = asyncio.Event()
            connection.reconnect_callbacks.add(lambda *_args: reconnected.set())
            # The broker outlives the stop; the restarted server listens on the same port.
            await asyncio.to_thread(first.stop)
            second = wiregate.testing.Server(amqp_port=port, broker=first.broker).start()
            await reconnected.wait()
            await channel.default_exchange.publish(aio_pika.Message(b"after"), routing_key="restart.q")
            assert await received.get() == b"after"

    try:
        asyncio.run(asyncio.wait_for(main(), TIMEOUT))
    finally:
        first.stop()
        if second is not None:
            second.stop()
