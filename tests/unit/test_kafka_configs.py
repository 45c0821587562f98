"""Kafka config definitions, validation and describe logic, and the admin
handlers' answers, without sockets: configs.py directly, and the handlers
through a sans-IO KafkaConnection fed requests encoded by kio."""

from __future__ import annotations

import io
import struct
import uuid
from typing import Any

import pytest
from kio.schema.errors import ErrorCode
from kio.serial import entity_reader, entity_writer

from wiregate.core import Broker
from wiregate.core import acls as core_acls
from wiregate.kafka_wire import KafkaConnection, configs
from wiregate.kafka_wire.protocol import build, request_class, response_class


# ------------------------------------------------------------------ helpers
class Client:
    """A sans-IO connection and a way to send it one request and read the answer."""

    def __init__(self, broker: Broker | None = None) -> None:
        self.broker = broker or Broker()
        self.connection = KafkaConnection(self.broker, peer="test", advertised=("127.0.0.1", 9092))
        self.correlation_id = 0

    def send(self, api_key: int, version: int, **fields: Any) -> Any:
        self.correlation_id += 1
        cls = request_class(api_key, version)
        header_cls = cls.__header_schema__
        buffer = io.BytesIO()
        header = dict(request_api_key=api_key, request_api_version=version, correlation_id=self.correlation_id)
        if "client_id" in header_cls.__dataclass_fields__:
            header["client_id"] = "unit"
        entity_writer(header_cls)(buffer, header_cls(**header))
        entity_writer(cls)(buffer, build(cls, **fields))
        body = buffer.getvalue()
        self.connection.receive_data(struct.pack(">i", len(body)) + body)
        frame = self.connection.data_to_send()[4:]
        response_cls = response_class(api_key, version)
        offset = 5 if response_cls.__flexible__ else 4
        return entity_reader(response_cls)(frame, offset)[0]

    def create_topic(self, name: str, partitions: int = 1, version: int = 7, **configs_: str) -> Any:
        topic = dict(name=name, num_partitions=partitions, replication_factor=1, assignments=[], configs=[dict(name=k, value=v) for k, v in configs_.items()])
        return self.send(19, version, topics=[topic], timeout=1000, validate_only=False).topics[0]


def by_name(entries: Any) -> dict[str, Any]:
    return {e.name: e for e in entries}


# ------------------------------------------------------------------ parsing
@pytest.mark.parametrize(
    ("name", "value", "rendered"),
    [
        ("retention.ms", " 1000 ", "1000"),
        ("retention.ms", "+5", "5"),
        ("retention.ms", "-1", "-1"),
        ("min.cleanable.dirty.ratio", "0.50", "0.5"),
        ("min.cleanable.dirty.ratio", "1", "1.0"),
        ("cleanup.policy", "compact, delete", "compact,delete"),
        ("cleanup.policy", "", ""),
        ("preallocate", "TRUE", "true"),
        ("compression.type", "zstd", "zstd"),
        ("compression.gzip.level", "-1", "-1"),
        ("leader.replication.throttled.replicas", "0:1,1:1", "0:1,1:1"),
        ("leader.replication.throttled.replicas", "*", "*"),
    ],
)
def test_topic_values_are_parsed_and_rendered_as_kafka_prints_them(name: str, value: str, rendered: str) -> None:
    assert configs.normalise(configs.TOPIC_CONFIGS[name], value) == rendered


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("retention.ms", "soon", "Invalid value soon for configuration retention.ms: Not a number of type LONG"),
        ("retention.ms", "1_000", "Invalid value 1_000 for configuration retention.ms: Not a number of type LONG"),
        ("retention.ms", "-2", "Invalid value -2 for configuration retention.ms: Value must be at least -1"),
        ("max.message.bytes", "3000000000", "Invalid value 3000000000 for configuration max.message.bytes: Not a number of type INT"),
        ("segment.bytes", "1024", "Invalid value 1024 for configuration segment.bytes: Value must be at least 1048576"),
        ("min.insync.replicas", "0", "Invalid value 0 for configuration min.insync.replicas: Value must be at least 1"),
        ("min.cleanable.dirty.ratio", "1.5", "Invalid value 1.5 for configuration min.cleanable.dirty.ratio: Value must be no more than 1"),
        ("cleanup.policy", "compact,forever", "Invalid value compact,forever for configuration cleanup.policy: String must be one of: compact, delete"),
        ("compression.type", "brotli", "Invalid value brotli for configuration compression.type: String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer"),
        ("message.timestamp.type", "Now", "Invalid value Now for configuration message.timestamp.type: String must be one of: CreateTime, LogAppendTime"),
        ("preallocate", "yes", "Invalid value yes for configuration preallocate: Expected value to be either true or false"),
        ("compression.gzip.level", "0", "Invalid value 0 for configuration compression.gzip.level: Value must be between 1 and 9 or equal to -1"),
        ("compression.lz4.level", "18", "Invalid value 18 for configuration compression.lz4.level: Value must be no more than 17"),
    ],
)
def test_bad_values_are_refused_with_kafkas_text(name: str, value: str, message: str) -> None:
    with pytest.raises(configs.ConfigError) as caught:
        configs.validate_topic_configs({name: value})
    assert (caught.value.code, caught.value.message) == (40, message)


def test_unknown_names_nulls_and_conflicting_compaction_lags() -> None:
    for overrides, message in [
        ({"message.format.version": "3.0"}, "Unknown topic config name: message.format.version"),
        ({"message.timestamp.difference.max.ms": "1"}, "Unknown topic config name: message.timestamp.difference.max.ms"),
        ({"retention.ms": None, "segment.ms": None}, "Null value not supported for topic configs: retention.ms,segment.ms"),
        ({"min.compaction.lag.ms": "10", "max.compaction.lag.ms": "5"}, "conflict topic config setting min.compaction.lag.ms (10) > max.compaction.lag.ms (5)"),
    ]:
        with pytest.raises(configs.ConfigError) as caught:
            configs.validate_topic_configs(overrides)
        assert caught.value.message == message


def test_kafka_4_0_topic_config_names_and_defaults() -> None:
    assert len(configs.TOPIC_CONFIGS) == 34
    defaults = {name: d.default for name, d in configs.TOPIC_CONFIGS.items()}
    assert defaults["retention.ms"] == "604800000"
    assert defaults["retention.bytes"] == "-1"
    assert defaults["max.message.bytes"] == "1048588"
    assert defaults["message.timestamp.after.max.ms"] == "3600000"
    assert defaults["segment.bytes"] == "1073741824"
    assert defaults["delete.retention.ms"] == "86400000"
    assert {d.type for d in configs.TOPIC_CONFIGS.values()} <= set(configs.CONFIG_TYPES)
    # every synonym names a broker config that exists
    for synonyms in configs.TOPIC_SYNONYMS.values():
        for synonym, _ in synonyms:
            assert synonym in configs.BROKER_CONFIGS


# ------------------------------------------------------ effective values
def test_topic_values_resolve_through_broker_layers() -> None:
    broker = Broker()
    assert configs.topic_default(broker, "retention.ms") == "604800000"
    broker.kafka_configs["log.retention.hours"] = "1"
    assert configs.topic_default(broker, "retention.ms") == "3600000"
    broker.kafka_dynamic_default_configs["log.retention.minutes"] = "2"
    assert configs.topic_default(broker, "retention.ms") == "120000"
    broker.kafka_dynamic_broker_configs["log.retention.ms"] = "5"
    assert configs.topic_default(broker, "retention.ms") == "5"
    topic = broker.topics.create("t", 1, {"retention.ms": " 7 "})
    assert configs.topic_value(broker, topic, "retention.ms") == "7"
    assert configs.topic_value(broker, topic, "remote.storage.enable") == "false"


def test_describe_topic_sources_and_synonyms() -> None:
    broker = Broker()
    broker.kafka_configs["log.segment.bytes"] = "2097152"
    broker.kafka_dynamic_broker_configs["log.retention.bytes"] = "100"
    topic = broker.topics.create("t", 1, {"cleanup.policy": "compact"})
    entries = {e["name"]: e for e in configs.describe_topic_configs(broker, topic, None, True)}
    assert list(entries) == sorted(configs.TOPIC_CONFIGS)
    assert entries["cleanup.policy"]["config_source"] == configs.DYNAMIC_TOPIC_CONFIG
    assert entries["cleanup.policy"]["synonyms"] == [
        dict(name="cleanup.policy", value="compact", source=configs.DYNAMIC_TOPIC_CONFIG),
        dict(name="log.cleanup.policy", value="delete", source=configs.DEFAULT_CONFIG),
    ]
    assert (entries["segment.bytes"]["value"], entries["segment.bytes"]["config_source"]) == ("2097152", configs.STATIC_BROKER_CONFIG)
    assert (entries["retention.bytes"]["value"], entries["retention.bytes"]["config_source"]) == ("100", configs.DYNAMIC_BROKER_CONFIG)
    # ConfigHelper drops synonyms before the first server synonym: log.retention.hours
    # is set only by default, log.retention.ms nowhere, so retention.ms has none
    assert entries["retention.ms"]["synonyms"] == []
    assert entries["retention.ms"]["config_source"] == configs.DEFAULT_CONFIG
    assert entries["retention.ms"]["config_type"] == configs.CONFIG_TYPES["LONG"]
    without = {e["name"]: e for e in configs.describe_topic_configs(broker, topic, ["cleanup.policy"], False)}
    assert list(without) == ["cleanup.policy"] and without["cleanup.policy"]["synonyms"] == []


def test_describe_broker_per_broker_and_cluster_default() -> None:
    broker = Broker()
    broker.kafka_dynamic_default_configs["log.retention.ms"] = "1000"
    static = configs.static_configs(broker, ("h", 1))
    entries = {e["name"]: e for e in configs.describe_broker_configs(broker, None, True, per_broker=True, static=static)}
    assert entries["advertised.listeners"]["value"] == "PLAINTEXT://h:1"
    assert (entries["advertised.listeners"]["config_source"], entries["advertised.listeners"]["read_only"]) == (configs.STATIC_BROKER_CONFIG, True)
    assert entries["log.retention.ms"]["config_source"] == configs.DYNAMIC_DEFAULT_BROKER_CONFIG
    assert entries["log.retention.ms"]["read_only"] is False
    assert entries["log.retention.hours"]["synonyms"] == [dict(name="log.retention.hours", value="168", source=configs.DEFAULT_CONFIG)]
    assert entries["ssl.key.password"]["is_sensitive"] is True and entries["ssl.key.password"]["value"] is None
    default_level = configs.describe_broker_configs(broker, None, False, per_broker=False, static=static)
    assert [(e["name"], e["value"], e["config_source"]) for e in default_level] == [("log.retention.ms", "1000", configs.DYNAMIC_DEFAULT_BROKER_CONFIG)]


def test_broker_changes_only_dynamic_configs() -> None:
    configs.validate_broker_change({"log.retention.ms": "5", "some.plugin.setting": "x"}, per_broker=True)
    with pytest.raises(configs.ConfigError) as caught:
        configs.validate_broker_change({"num.partitions": "3", "log.dirs": "/x"}, per_broker=True)
    assert (caught.value.code, caught.value.message) == (42, "Cannot update these configs dynamically: Set(log.dirs, num.partitions)")
    with pytest.raises(configs.ConfigError) as caught:
        configs.validate_broker_change({"listeners": "PLAINTEXT://:1"}, per_broker=False)
    assert caught.value.code == 42 and "broker id must be specified" in caught.value.message
    with pytest.raises(configs.ConfigError) as caught:
        configs.validate_broker_change({"log.retention.ms": "x"}, per_broker=True)
    assert caught.value.message == "Invalid value x for configuration log.retention.ms: Not a number of type LONG"


def test_incremental_operations() -> None:
    defs = configs.TOPIC_CONFIGS
    assert configs.apply_incremental({}, [("cleanup.policy", configs.APPEND, "compact")], defs) == {"cleanup.policy": "delete,compact"}
    assert configs.apply_incremental({"cleanup.policy": "delete,compact"}, [("cleanup.policy", configs.SUBTRACT, "delete")], defs) == {"cleanup.policy": "compact"}
    assert configs.apply_incremental({"a": "1"}, [("a", configs.DELETE, None), ("b", configs.SET, "2")], defs) == {"b": "2"}
    with pytest.raises(configs.ConfigError) as caught:
        configs.apply_incremental({}, [("retention.ms", configs.APPEND, "1")], defs)
    assert caught.value.message == "Can't APPEND to key retention.ms because its type is not LIST."


def test_java_double_rendering() -> None:
    assert configs._java_double(0.5) == "0.5"
    assert configs._java_double(1.7976931348623157e308) == "1.7976931348623157E308"
    assert configs._java_double(1e7) == "1.0E7"
    assert configs._java_double(0.0) == "0.0"


# ------------------------------------------------------ handlers (sans-IO)
def test_create_topics_order_of_checks_and_duplicates() -> None:
    client = Client()
    client.create_topic("a.b")
    topics = [
        dict(name="a_b", num_partitions=1, replication_factor=1, assignments=[], configs=[]),
        dict(name="dup", num_partitions=1, replication_factor=1, assignments=[], configs=[]),
        dict(name="dup", num_partitions=1, replication_factor=1, assignments=[], configs=[]),
        dict(name="a.b", num_partitions=1, replication_factor=1, assignments=[], configs=[dict(name="x", value="1")]),
        dict(name="nulls", num_partitions=1, replication_factor=1, assignments=[], configs=[dict(name="retention.ms", value=None)]),
        dict(name="manual", num_partitions=2, replication_factor=-1, assignments=[dict(partition_index=0, broker_ids=[0])], configs=[]),
        dict(name="gap", num_partitions=-1, replication_factor=-1, assignments=[dict(partition_index=1, broker_ids=[0])], configs=[]),
        dict(name="__cluster_metadata", num_partitions=1, replication_factor=1, assignments=[], configs=[]),
    ]
    response = client.send(19, 7, topics=topics, timeout=1000, validate_only=False)
    assert [(t.name, t.error_code, t.error_message) for t in response.topics] == [
        ("a_b", ErrorCode.invalid_topic_exception, "Topic 'a_b' collides with existing topic: a.b"),
        ("a.b", ErrorCode.topic_already_exists, "Topic 'a.b' already exists."),
        ("nulls", ErrorCode.invalid_config, "Null value not supported for topic configs: retention.ms"),
        ("manual", ErrorCode.invalid_request, "A manual partition assignment was specified, but numPartitions was not set to -1."),
        ("gap", ErrorCode.invalid_replica_assignment, "partitions should be a consecutive 0-based integer sequence"),
        ("__cluster_metadata", ErrorCode.invalid_request, "Creation of internal topic __cluster_metadata is prohibited."),
        ("dup", ErrorCode.invalid_request, "Duplicate topic name."),
    ]
    assert set(client.broker.topics.by_name) == {"a.b"}


def test_create_topics_defaults_and_v5_configs() -> None:
    client = Client()
    client.broker.kafka_configs["num.partitions"] = "3"
    client.broker.kafka_configs["log.retention.hours"] = "1"
    topic = dict(name="t", num_partitions=-1, replication_factor=-1, assignments=[], configs=[dict(name="segment.ms", value="1000")])
    result = client.send(19, 5, topics=[topic], timeout=1000, validate_only=False).topics[0]
    assert (result.error_code, result.num_partitions, result.replication_factor) == (ErrorCode.none, 3, 1)
    entries = by_name(result.configs)
    assert (entries["segment.ms"].value, entries["segment.ms"].config_source) == ("1000", configs.DYNAMIC_TOPIC_CONFIG)
    assert (entries["retention.ms"].value, entries["retention.ms"].config_source) == ("3600000", configs.STATIC_BROKER_CONFIG)
    assert entries["retention.bytes"].config_source == configs.DEFAULT_CONFIG
    assert len(client.broker.topics.get("t").partitions) == 3


def test_delete_topics_by_name_and_id() -> None:
    client = Client()
    topic_id = client.create_topic("t").topic_id
    client.create_topic("u")
    unknown = uuid.uuid4()
    response = client.send(20, 6, topics=[dict(name=None, topic_id=topic_id), dict(name=None, topic_id=unknown), dict(name="u", topic_id=uuid.UUID(int=0)), dict(name="nope", topic_id=uuid.UUID(int=0))], timeout=1000)
    got = {(r.name, r.error_code) for r in response.responses}
    assert got == {("t", ErrorCode.none), (None, ErrorCode.unknown_topic_id), ("u", ErrorCode.none), ("nope", ErrorCode.unknown_topic_or_partition)}
    assert not client.broker.topics.by_name


def test_delete_topics_disabled() -> None:
    client = Client()
    client.create_topic("t")
    client.broker.kafka_configs["delete.topic.enable"] = "false"
    assert client.send(20, 4, topic_names=["t"], timeout=1000).responses[0].error_code == ErrorCode.topic_deletion_disabled
    assert client.send(20, 2, topic_names=["t"], timeout=1000).responses[0].error_code == ErrorCode.invalid_request
    assert "t" in client.broker.topics


def test_create_partitions_refusals() -> None:
    client = Client()
    client.create_topic("t", 2)
    topics = [
        dict(name="t", count=2, assignments=None),
        dict(name="nope", count=3, assignments=None),
    ]
    response = client.send(37, 3, topics=topics, timeout=1000, validate_only=False)
    assert [(r.name, r.error_code, r.error_message) for r in response.results] == [
        ("t", ErrorCode.invalid_partitions, "Topic already has 2 partition(s)."),
        ("nope", ErrorCode.unknown_topic_or_partition, None),
    ]
    response = client.send(37, 3, topics=[dict(name="t", count=4, assignments=[dict(broker_ids=[0])])], timeout=1000, validate_only=False)
    assert response.results[0].error_message == "Attempted to add 2 additional partition(s), but only 1 assignment(s) were specified."
    response = client.send(37, 3, topics=[dict(name="t", count=4, assignments=None)], timeout=1000, validate_only=True)
    assert response.results[0].error_code == ErrorCode.none and len(client.broker.topics.get("t").partitions) == 2


def test_describe_configs_errors() -> None:
    client = Client()
    resources = [
        dict(resource_type=2, resource_name="nope", configuration_keys=None),
        dict(resource_type=2, resource_name="bad/name", configuration_keys=None),
        dict(resource_type=4, resource_name="2", configuration_keys=None),
        dict(resource_type=4, resource_name="x", configuration_keys=None),
        dict(resource_type=4, resource_name="0", configuration_keys=["num.partitions"]),
    ]
    results = client.send(32, 4, resources=resources, include_synonyms=False, include_documentation=False).results
    assert [(r.error_code, r.error_message) for r in results[:4]] == [
        (ErrorCode.unknown_topic_or_partition, None),
        (ErrorCode.invalid_topic_exception, "Topic name \"bad/name\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"),
        (ErrorCode.invalid_request, "Unexpected broker id, expected 0 or empty string, but received 2"),
        (ErrorCode.invalid_request, "Broker id must be an integer, but it is: x"),
    ]
    (entry,) = results[4].configs
    assert (entry.name, entry.value, entry.read_only, entry.config_source, entry.config_type) == ("num.partitions", "1", True, configs.DEFAULT_CONFIG, 3)


def test_alter_configs_replaces_the_whole_set() -> None:
    client = Client()
    client.create_topic("t", **{"retention.ms": "1000", "segment.ms": "2000"})
    resources = [dict(resource_type=2, resource_name="t", configs=[dict(name="retention.bytes", value="5")])]
    response = client.send(33, 2, resources=resources, validate_only=False)
    assert response.responses[0].error_code == ErrorCode.none
    assert client.broker.topics.get("t").configs == {"retention.bytes": "5"}
    missing = [dict(resource_type=2, resource_name="nope", configs=[dict(name="retention.ms", value="1")])]
    response = client.send(33, 2, resources=missing, validate_only=False)
    assert (response.responses[0].error_code, response.responses[0].error_message) == (ErrorCode.unknown_topic_or_partition, "The topic 'nope' does not exist.")
    twice = [dict(resource_type=2, resource_name="t", configs=[]), dict(resource_type=2, resource_name="t", configs=[])]
    assert {r.error_message for r in client.send(33, 2, resources=twice, validate_only=False).responses} == {"Each resource must appear at most once."}


def test_incremental_alter_configs_broker_and_validate_only() -> None:
    client = Client()
    set_op = dict(name="log.retention.ms", config_operation=configs.SET, value="100")
    response = client.send(44, 1, resources=[dict(resource_type=4, resource_name="", configs=[set_op])], validate_only=True)
    assert response.responses[0].error_code == ErrorCode.none and not client.broker.kafka_dynamic_default_configs
    client.send(44, 1, resources=[dict(resource_type=4, resource_name="", configs=[set_op])], validate_only=False)
    assert client.broker.kafka_dynamic_default_configs == {"log.retention.ms": "100"}
    refused = [dict(name="num.partitions", config_operation=configs.SET, value="3")]
    response = client.send(44, 1, resources=[dict(resource_type=4, resource_name="0", configs=refused)], validate_only=False)
    assert (response.responses[0].error_code, response.responses[0].error_message) == (ErrorCode.invalid_request, "Cannot update these configs dynamically: Set(num.partitions)")
    append = [dict(name="log.retention.ms", config_operation=configs.APPEND, value="1")]
    response = client.send(44, 1, resources=[dict(resource_type=4, resource_name="0", configs=append)], validate_only=False)
    assert (response.responses[0].error_code, response.responses[0].error_message) == (ErrorCode.invalid_config, "Config value append is not allowed for config key: log.retention.ms")


def test_acl_filters() -> None:
    acls = core_acls.Acls()

    def binding(name: str, pattern: int, operation: int = 3) -> core_acls.AclBinding:
        return core_acls.AclBinding(resource_type=core_acls.TOPIC, resource_name=name, pattern_type=pattern, principal="User:a", host="*", operation=operation, permission_type=core_acls.ALLOW)

    for b in (binding("orders", core_acls.LITERAL), binding("ord", core_acls.PREFIXED), binding("*", core_acls.LITERAL), binding("other", core_acls.LITERAL)):
        acls.add(b)
    acls.add(binding("orders", core_acls.LITERAL))
    assert len(acls) == 4

    def names(resource_name: str | None, pattern: int, **kw: Any) -> list[str]:
        fields = dict(resource_type=core_acls.RESOURCE_ANY, resource_name=resource_name, pattern_type=pattern, principal=None, host=None, operation=core_acls.OPERATION_ANY, permission_type=core_acls.PERMISSION_ANY)
        fields.update(kw)
        return sorted(b.resource_name for b in acls.matching(core_acls.AclBindingFilter(**fields)))

    assert names("orders", core_acls.MATCH) == ["*", "ord", "orders"]
    assert names("orders", core_acls.PATTERN_ANY) == ["orders"]
    assert names("ord", core_acls.PREFIXED) == ["ord"]
    assert names(None, core_acls.LITERAL) == ["*", "orders", "other"]
    assert names(None, core_acls.PATTERN_ANY, principal="User:b") == []
    assert names(None, core_acls.PATTERN_ANY, operation=4) == []


def test_create_acls_refusals() -> None:
    client = Client()

    def creation(**kw: Any) -> dict[str, Any]:
        fields = dict(resource_type=2, resource_name="t", resource_pattern_type=3, principal="User:a", host="*", operation=3, permission_type=3)
        fields.update(kw)
        return fields

    creations = [creation(), creation(resource_type=1), creation(resource_pattern_type=2), creation(operation=1), creation(permission_type=1), creation(resource_name=""), creation(principal="nobody"), creation(resource_type=4, resource_name="c")]
    results = client.send(30, 3, creations=creations).results
    assert [(r.error_code, r.error_message) for r in results] == [
        (ErrorCode.none, None),
        (ErrorCode.invalid_request, "Invalid resourceType ANY"),
        (ErrorCode.invalid_request, "Invalid patternType MATCH"),
        (ErrorCode.invalid_request, "Invalid operation ANY"),
        (ErrorCode.invalid_request, "Invalid permissionType ANY"),
        (ErrorCode.invalid_request, "Resource name should not be empty"),
        (ErrorCode.invalid_request, "Could not parse principal from `nobody` (no colon is present separating the principal type from the principal name)"),
        (ErrorCode.invalid_request, "The only valid name for the CLUSTER resource is kafka-cluster"),
    ]
    assert len(client.broker.kafka_acls) == 1


def test_elect_leaders_and_reassignments() -> None:
    client = Client()
    client.create_topic("t", 2)
    response = client.send(43, 2, election_type=0, topic_partitions=[dict(topic="t", partitions=[0, 5]), dict(topic="nope", partitions=[0])], timeout=1000)
    assert [(r.topic, [(p.partition_id, p.error_code, p.error_message) for p in r.partition_result]) for r in response.replica_election_results] == [
        ("t", [(0, ErrorCode.election_not_needed, "Leader election not needed for topic partition."), (5, ErrorCode.unknown_topic_or_partition, "No such partition as t-5")]),
        ("nope", [(0, ErrorCode.unknown_topic_or_partition, "No such topic as nope")]),
    ]
    response = client.send(43, 2, election_type=0, topic_partitions=None, timeout=1000)
    assert [(r.topic, r.partition_result) for r in response.replica_election_results] == [("t", ())]
    partitions = [dict(partition_index=0, replicas=[0]), dict(partition_index=1, replicas=None), dict(partition_index=0, replicas=[2])]
    response = client.send(45, 0, timeout=1000, topics=[dict(name="t", partitions=partitions)])
    assert [p.error_code for p in response.responses[0].partitions] == [ErrorCode.none, ErrorCode.no_reassignment_in_progress, ErrorCode.invalid_replica_assignment]


def test_describe_topic_partitions_pages() -> None:
    client = Client()
    client.create_topic("a", 3)
    client.create_topic("b", 2)
    first = client.send(75, 0, topics=[], response_partition_limit=4, cursor=None)
    assert [(t.name, [p.partition_index for p in t.partitions]) for t in first.topics] == [("a", [0, 1, 2]), ("b", [0])]
    assert (first.next_cursor.topic_name, first.next_cursor.partition_index) == ("b", 1)
    second = client.send(75, 0, topics=[], response_partition_limit=4, cursor=dict(topic_name="b", partition_index=1))
    assert [(t.name, [p.partition_index for p in t.partitions]) for t in second.topics] == [("b", [1])]
    assert second.next_cursor is None


def test_client_quotas_round_trip() -> None:
    client = Client()
    entity = [dict(entity_type="user", entity_name="alice")]
    ops = [dict(key="producer_byte_rate", value=1024.0, remove=False), dict(key="request_percentage", value=12.5, remove=False)]
    response = client.send(49, 1, entries=[dict(entity=entity, ops=ops)], validate_only=False)
    assert response.entries[0].error_code == ErrorCode.none
    bad = client.send(49, 1, entries=[dict(entity=entity, ops=[dict(key="producer_byte_rate", value=1.5, remove=False)]), dict(entity=[dict(entity_type="ip", entity_name="1.2.3.4"), dict(entity_type="user", entity_name=None)], ops=[])], validate_only=False)
    assert [(e.error_code, e.error_message) for e in bad.entries] == [
        (ErrorCode.invalid_request, "Proposed value for producer_byte_rate is not a LONG."),
        (ErrorCode.invalid_request, "Invalid quota entity combination, IP entity should not be combined with User or ClientId"),
    ]
    described = client.send(48, 1, components=[dict(entity_type="user", match_type=2, match=None)], strict=False)
    ((got_entity, values),) = [([(e.entity_type, e.entity_name) for e in entry.entity], {v.key: v.value for v in entry.values}) for entry in described.entries]
    assert got_entity == [("user", "alice")] and values == {"producer_byte_rate": 1024.0, "request_percentage": 12.5}
    assert client.send(48, 1, components=[dict(entity_type="user", match_type=1, match=None)], strict=False).entries == ()


def test_metadata_authorized_operations_on_request() -> None:
    client = Client()
    client.create_topic("t")
    asked = client.send(3, 12, topics=None, allow_auto_topic_creation=False, include_topic_authorized_operations=True)
    assert asked.topics[0].topic_authorized_operations == sum(1 << op for op in (3, 4, 5, 6, 7, 8, 10, 11))
    plain = client.send(3, 12, topics=None, allow_auto_topic_creation=False, include_topic_authorized_operations=False)
    assert plain.topics[0].topic_authorized_operations == -2147483648
