"""Request decoding, kio versus kafka-python's kafka.protocol: why kafka_wire uses kio.

Decodes the same Fetch v12 request (4 topics x 8 partitions) and Metadata v12
request with both libraries and prints medians of several rounds and the ratio.

    python bench/kafka_codec.py
"""

from __future__ import annotations

import datetime
import io
import statistics
import time

import kafka.protocol.consumer as kp_consumer
import kafka.protocol.metadata as kp_metadata
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
from kio.serial import entity_reader, entity_writer


def _encoded(cls, entity) -> bytes:
    buffer = io.BytesIO()
    entity_writer(cls)(buffer, entity)
    return buffer.getvalue()


def _median_us(decode, rounds: int = 7, n: int = 3000) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            decode()
        times.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(times)


def main() -> None:
    fetch = FetchRequest(
        cluster_id=None, replica_id=-1, max_wait=datetime.timedelta(milliseconds=500), min_bytes=1,
        max_bytes=52428800, isolation_level=0, session_id=0, session_epoch=-1,
        topics=tuple(
            FetchTopic(topic=f"topic-{t}", partitions=tuple(
                FetchPartition(partition=p, current_leader_epoch=-1, fetch_offset=100, last_fetched_epoch=-1,
                               log_start_offset=-1, partition_max_bytes=1048576)
                for p in range(8)))
            for t in range(4)),
        forgotten_topics_data=(), rack_id="",
    )
    metadata = MetadataRequest(
        topics=tuple(MetadataRequestTopic(topic_id=None, name=f"topic-{t}") for t in range(4)),
        allow_auto_topic_creation=True, include_topic_authorized_operations=False,
    )
    cases = [
        ("Fetch v12", _encoded(FetchRequest, fetch), entity_reader(FetchRequest), kp_consumer.FetchRequest, 12),
        ("Metadata v12", _encoded(MetadataRequest, metadata), entity_reader(MetadataRequest), kp_metadata.MetadataRequest, 12),
    ]
    for name, body, kio_reader, kp_class, version in cases:
        kio_us = _median_us(lambda: kio_reader(body, 0))
        kp_us = _median_us(lambda: kp_class.decode(body, version=version))
        print(f"{name} ({len(body)} bytes): kio {kio_us:.1f} us, kafka-python {kp_us:.1f} us -> kio {kp_us / kio_us:.1f}x faster")


if __name__ == "__main__":
    main()
