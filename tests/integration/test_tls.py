"""AMQP over TLS (amqps), as aio-pika's AMQPS tests and pika use it."""

from __future__ import annotations

import asyncio
import ssl

import aio_pika
import pika
import pytest

from wiregate.testing import Server


@pytest.fixture(scope="module")
def tls_server():
    with Server(amqps_port=0) as server:
        yield server


def _client_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def test_pika_over_tls(tls_server) -> None:
    host, port = tls_server.addresses.amqps
    params = pika.ConnectionParameters(host=host, port=port, ssl_options=pika.SSLOptions(_client_context()))
    connection = pika.BlockingConnection(params)
    channel = connection.channel()
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.basic_publish("", queue, b"secret")
    assert channel.basic_get(queue, auto_ack=True)[2] == b"secret"
    connection.close()


def test_aio_pika_over_tls(tls_server) -> None:
    async def main() -> bytes:
        connection = await aio_pika.connect(tls_server.amqps_url, ssl_context=_client_context())
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(exclusive=True)
            await channel.default_exchange.publish(aio_pika.Message(b"over tls"), routing_key=queue.name)
            message = await queue.get(timeout=5)
            await message.ack()
            return message.body

    assert asyncio.run(main()) == b"over tls"


def test_plain_client_on_tls_port_is_dropped_without_harm(tls_server) -> None:
    host, port = tls_server.addresses.amqps
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        pika.BlockingConnection(pika.ConnectionParameters(host=host, port=port, socket_timeout=2, blocked_connection_timeout=2))
    # the plain listener still works
    connection = pika.BlockingConnection(pika.URLParameters(tls_server.amqp_url))
    assert connection.is_open
    connection.close()


def test_no_tls_listener_by_default(wiregate_server) -> None:
    assert wiregate_server.amqps_url is None
