"""Many concurrent connections, AMQP and Kafka mixed: all served, the server stays responsive.

The client side is ``bench/connections.py`` (raw frames on asyncio: 100 AMQP
connections that each declare a queue, consume, publish and ack; 100 Kafka
connections that each produce and fetch back), here with 200 connections
against an embedded server.  While they are all held, unmodified pika and
kafka-python clients do real work.  Nothing is timed.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Any

import pika
from kafka import KafkaConsumer, KafkaProducer

from bench.connections import exercise, raise_open_files_limit
from wiregate.testing import Server

COUNT = 200


def _real_clients(srv: Server) -> dict[str, Any]:
    with urllib.request.urlopen(f"{srv.http_url}/api/overview", timeout=10) as answer:
        held = json.load(answer)["connections"]
    connection = pika.BlockingConnection(pika.URLParameters(srv.amqp_url))
    channel = connection.channel()
    channel.queue_declare("while-held")
    channel.confirm_delivery()
    channel.basic_publish("", "while-held", b"pika works")
    _method, _props, pika_body = channel.basic_get("while-held", auto_ack=True)
    connection.close()
    producer = KafkaProducer(bootstrap_servers=srv.kafka_bootstrap)
    producer.send("while-held", b"kafka works").get(timeout=30)
    producer.close()
    consumer = KafkaConsumer(
        "while-held", bootstrap_servers=srv.kafka_bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=10_000
    )
    kafka_values = [next(consumer).value]  # StopIteration after 10 s without it
    consumer.close()
    return {"held": held, "pika": pika_body, "kafka": kafka_values}


def test_200_mixed_connections_are_all_served_and_the_server_stays_responsive() -> None:
    raise_open_files_limit(COUNT)
    with Server() as srv:

        async def during_hold() -> dict[str, Any]:
            return await asyncio.to_thread(_real_clients, srv)

        result = asyncio.run(
            exercise("127.0.0.1", srv.amqp_port, int(srv.kafka_bootstrap.rsplit(":", 1)[1]), count=COUNT, hold=1.0,
                     during_hold=during_hold)
        )
        assert result["open_failures"] == []
        assert result["first_round_failures"] == []
        assert result["final_failures"] == []
        assert result["working_at_end"] == {"amqp": COUNT // 2, "kafka": COUNT // 2}
        assert all("error" not in probe for probe in result["probes"])
        seen = result["during_hold"]
        assert seen["held"]["amqp"] >= COUNT // 2 and seen["held"]["kafka"] >= COUNT // 2
        assert seen["pika"] == b"pika works"
        assert seen["kafka"] == [b"kafka works"]
        assert len(srv.records("bench-connections")) == COUNT  # two from each of the COUNT // 2 Kafka connections
        assert result["ok"]
