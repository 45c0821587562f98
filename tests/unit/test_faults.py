"""Fault rules without sockets: the registry's counting, and the Kafka error answers."""

from __future__ import annotations

import pytest
from kio.schema.errors import ErrorCode

import wiregate.amqp.faults  # noqa: F401  (registers the AMQP rule keys)
from wiregate.core.faults import Faults
from wiregate.kafka_wire import faults as kafka_faults
from wiregate.kafka_wire.protocol import build, encode_response, request_class, response_class


def _fields(**extra):
    return {"api": "Produce", "topic": {"t"}, "partition": {0}, "_topic_partition": {("t", 0)}, **extra}


def test_after_times_and_removal():
    faults = Faults()
    heard = []
    faults.add_listener(heard.append)
    rule = faults.add_rule({"protocol": "kafka", "api": "Produce", "action": "error", "error": "NOT_LEADER_OR_FOLLOWER", "after": 1, "times": 2})
    assert rule.options == {"error": 6}
    fired = [faults.match("kafka", _fields(), "peer") for _ in range(4)]
    assert fired == [None, rule, rule, None]
    assert rule.hits == 2
    assert faults.get(rule.id) is None  # ran out: removed
    assert faults.active == {}
    assert [hit["rule"] for hit in heard] == [rule.id, rule.id]
    assert heard[0]["action"] == "error" and heard[0]["error"] == 6 and heard[0]["peer"] == "peer"


def test_observing_rules_default_to_until_removed_and_do_not_shadow_others():
    faults = Faults()
    observer = faults.add_rule({"protocol": "kafka", "api": "Produce"})
    failing = faults.add_rule({"protocol": "kafka", "api": 0, "action": "drop"})
    assert observer.times is None and failing.times == 1
    # The first matching rule fires; every matching rule records.
    assert faults.match("kafka", _fields()) is observer
    assert len(failing.matched) == 1 and failing.hits == 0
    assert faults.remove(observer.id)
    assert faults.match("kafka", _fields()) is failing
    assert not faults.remove(observer.id)


def test_topic_and_partition_match_together():
    faults = Faults()
    rule = faults.add_rule({"protocol": "kafka", "api": "Produce", "topic": "t", "partition": 1, "times": None})
    assert faults.match("kafka", _fields()) is None  # t/0 and no t/1
    both = {"api": "Produce", "topic": {"t", "u"}, "partition": {0, 1}, "_topic_partition": {("t", 0), ("u", 1)}}
    assert faults.match("kafka", both) is None  # partition 1 belongs to u
    assert faults.match("kafka", {**both, "_topic_partition": {("t", 1)}}) is rule
    described = rule.describe()
    assert (described["topic"], described["partition"]) == ("t", 1)
    assert not [key for key in described if key.startswith("_")]
    assert not [key for key in rule.matched[0] if key.startswith("_")]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"protocol": "kafka", "action": "drop"}, "needs 'api'"),
        ({"protocol": "kafka", "api": "Produce", "action": "error"}, "needs 'error'"),
        ({"protocol": "kafka", "api": "Produce", "action": "error", "error": 0}, "not a fault"),
        ({"protocol": "kafka", "api": "Produce", "action": "delay"}, "delay_ms"),
        ({"protocol": "kafka", "api": "Produce", "times": 0}, "times"),
        ({"protocol": "kafka", "api": "Produce", "after": -1}, "after"),
        ({"protocol": "kafka", "api": "Produce", "queue": "q"}, "unknown key"),
        ({"protocol": "amqp", "method": "basic.publish", "action": "close_channel", "reply_code": 999}, "reply_code"),
        ({"protocol": "amqp", "action": "explode"}, "unknown amqp action"),
        ("not a mapping", "JSON object"),
    ],
)
def test_bad_specs_are_refused(spec, message):
    with pytest.raises(ValueError, match=message):
        Faults().add(spec)


def test_amqp_close_defaults():
    faults = Faults()
    channel = faults.add({"protocol": "amqp", "method": "Queue.Declare", "action": "close_channel"})
    connection = faults.add({"protocol": "amqp", "action": "close_connection"})
    assert (channel["method"], channel["reply_code"]) == ("queue.declare", 406)
    assert connection["reply_code"] == 320 and "method" not in connection


def _request(api_key, version, **fields):
    return build(request_class(api_key, version), **fields)


def test_produce_error_answer_mirrors_every_partition():
    request = _request(0, 9, acks=-1, topic_data=[{"name": "t", "partition_data": [{"index": 0}, {"index": 3}]}, {"name": "u", "partition_data": [{"index": 1}]}])
    response = kafka_faults.error_response(response_class(0, 9), request, 6)
    got = [(t.name, p.index, p.error_code, p.base_offset, p.log_start_offset) for t in response.responses for p in t.partition_responses]
    assert got == [("t", 0, ErrorCode.not_leader_or_follower, -1, -1), ("t", 3, ErrorCode.not_leader_or_follower, -1, -1), ("u", 1, ErrorCode.not_leader_or_follower, -1, -1)]
    encode_response(response, 7)  # a valid response of that version


@pytest.mark.parametrize(
    ("api_key", "version", "fields", "walk"),
    [
        (1, 12, {"topics": [{"topic": "t", "partitions": [{"partition": 2}]}]}, lambda r: [(t.topic, p.partition_index, p.error_code, p.high_watermark) for t in r.responses for p in t.partitions]),
        (2, 7, {"topics": [{"name": "t", "partitions": [{"partition_index": 0}]}]}, lambda r: [(t.name, p.partition_index, p.error_code, p.offset) for t in r.topics for p in t.partitions]),
        (8, 8, {"group_id": "g", "topics": [{"name": "t", "partitions": [{"partition_index": 1}]}]}, lambda r: [(t.name, p.partition_index, p.error_code) for t in r.topics for p in t.partitions]),
        (9, 7, {"group_id": "g", "topics": [{"name": "t", "partition_indexes": [0, 1]}]}, lambda r: [r.error_code] + [(t.name, p.partition_index, p.error_code, p.committed_offset) for t in r.topics for p in t.partitions]),
        (9, 8, {"groups": [{"group_id": "g", "topics": [{"name": "t", "partition_indexes": [4]}]}]}, lambda r: [(g.group_id, g.error_code) for g in r.groups] + [(t.name, p.partition_index, p.error_code) for g in r.groups for t in g.topics for p in t.partitions]),
        (10, 4, {"coordinator_keys": ["g1", "g2"]}, lambda r: [(c.key, c.error_code, c.node_id) for c in r.coordinators]),
        (10, 3, {"key": "g"}, lambda r: [(r.error_code, r.node_id)]),
        (11, 7, {"group_id": "g", "protocol_type": "consumer"}, lambda r: [(r.error_code, r.generation_id)]),
        (20, 3, {"topic_names": ["a", "b"]}, lambda r: [(t.name, t.error_code) for t in r.responses]),
        (19, 7, {"topics": [{"name": "n", "num_partitions": 1}]}, lambda r: [(t.name, t.error_code) for t in r.topics]),
        (22, 4, {}, lambda r: [(r.error_code, r.producer_id, r.producer_epoch)]),
    ],
)
def test_error_answers_of_other_apis(api_key, version, fields, walk):
    request = _request(api_key, version, **fields)
    response = kafka_faults.error_response(response_class(api_key, version), request, 15)
    encode_response(response, 1)
    values = walk(response)
    assert values, "the answer names what the request named"
    for value in values:
        items = value if isinstance(value, tuple) else (value,)
        assert ErrorCode.coordinator_not_available in items


def test_request_fields_find_topics_and_partitions():
    request = _request(9, 8, groups=[{"group_id": "g", "topics": [{"name": "t", "partition_indexes": [4, 5]}]}])
    fields = kafka_faults.request_fields(9, 8, "cid", request)
    assert fields["api"] == "OffsetFetch" and fields["client_id"] == "cid"
    assert fields["topic"] == {"t"} and fields["partition"] == {4, 5} and fields["_topic_partition"] == {("t", 4), ("t", 5)}
