"""Admin APIs through real admin clients: kafka-python, confluent-kafka and aiokafka.

Topics (create, delete, partitions), configs (describe, alter, incremental
alter) with Kafka 4.0's names, defaults and sources, the cluster, ACLs, log
dirs, leader elections, reassignments, the quorum and client quotas, as a
single Kafka 4.0 broker answers them.  The module has its own server, since
it changes broker-level configs and ACLs.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource as CKConfigResource,
    ConfigSource,
    NewPartitions as CKNewPartitions,
    NewTopic as CKNewTopic,
)
from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ConfigResource,
    ConfigResourceType,
    KafkaAdminClient,
    NewPartitions,
    NewTopic,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
)
from kafka.errors import ElectionNotNeededError, NoError, TopicAlreadyExistsError
from kafka.structs import TopicPartition, TopicPartitionReplica

from wiregate.testing import Server

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with Server() as srv:
        yield srv


@pytest.fixture(scope="module")
def admin(server: Server) -> Iterator[KafkaAdminClient]:
    client = KafkaAdminClient(bootstrap_servers=server.kafka_bootstrap, request_timeout_ms=5000)
    yield client
    client.close()


@pytest.fixture(scope="module")
def ck(server: Server) -> AdminClient:
    return AdminClient({"bootstrap.servers": server.kafka_bootstrap})


def _name() -> str:
    return f"admin-{uuid.uuid4().hex[:10]}"


def _ck_wait(futures: dict[Any, Any]) -> dict[Any, Any]:
    """Each future's result, or the KafkaError it failed with."""
    results = {}
    for key, future in futures.items():
        try:
            results[key] = future.result(timeout=10)
        except KafkaException as error:
            results[key] = error.args[0]
    return results


# --------------------------------------------------------------- kafka-python
def test_create_and_delete_topics(admin: KafkaAdminClient, server: Server) -> None:
    name = _name()
    response = admin.create_topics([NewTopic(name, 3, 1, topic_configs={"retention.ms": "1000"})])
    created = response["topics"][0]
    assert (created["name"], created["error_code"], created["num_partitions"], created["replication_factor"]) == (name, 0, 3, 1)
    assert created["configs"]["retention.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"
    assert created["configs"]["retention.bytes"] == {"value": "-1", "read_only": False, "config_source": "DEFAULT_CONFIG", "is_sensitive": False}
    assert len(server.broker.topics.get(name).partitions) == 3

    with pytest.raises(TopicAlreadyExistsError):
        admin.create_topics([NewTopic(name, 1, 1)])
    again = admin.create_topics([NewTopic(name, 1, 1)], raise_errors=False)["topics"][0]
    assert again["error_message"] == f"Topic '{name}' already exists."

    # -1 partitions and replication factor: the broker's num.partitions / default.replication.factor
    defaults = _name()
    assert admin.create_topics([defaults])["topics"][0]["num_partitions"] == 1

    response = admin.delete_topics([name, defaults, "no-such-topic"], raise_errors=False)
    codes = {t["name"]: t["error_code"] for t in response["topics"]}
    assert codes == {name: 0, defaults: 0, "no-such-topic": 3}
    assert server.broker.topics.get(name) is None


def test_create_topics_refusals(admin: KafkaAdminClient) -> None:
    response = admin.create_topics(
        [
            NewTopic("bad name!", 1, 1),
            NewTopic(_name(), 1, 3),
            NewTopic(_name(), 1, 1, topic_configs={"no.such.config": "1"}),
            NewTopic(_name(), 1, 1, topic_configs={"retention.ms": "soon"}),
            NewTopic(_name(), 0, 1),
        ],
        raise_errors=False,
    )
    results = [(t["error_code"], t["error_message"]) for t in response["topics"]]
    assert results == [
        (17, "Topic name \"bad name!\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"),
        (38, "Unable to replicate the partition 3 time(s): The target replication factor of 3 cannot be reached because only 1 broker(s) are registered."),
        (40, "Unknown topic config name: no.such.config"),
        (40, "Invalid value soon for configuration retention.ms: Not a number of type LONG"),
        (37, "Number of partitions was set to an invalid non-positive value."),
    ]


def test_create_topics_validate_only_and_manual_assignment(admin: KafkaAdminClient, server: Server) -> None:
    name = _name()
    response = admin.create_topics([NewTopic(name, 2, 1)], validate_only=True)
    assert response["topics"][0]["error_code"] == 0
    assert server.broker.topics.get(name) is None
    manual = admin.create_topics([NewTopic(name, replica_assignments={0: [0], 1: [0]})])
    assert manual["topics"][0]["num_partitions"] == 2
    wrong = admin.create_topics([NewTopic(_name(), replica_assignments={0: [2]})], raise_errors=False)["topics"][0]
    assert (wrong["error_code"], wrong["error_message"]) == (39, "The manual partition assignment includes broker 2, but no such broker is registered.")


def test_create_partitions(admin: KafkaAdminClient, server: Server) -> None:
    name = _name()
    admin.create_topics([NewTopic(name, 2, 1)])
    response = admin.create_partitions({name: NewPartitions(4)})
    assert [(r.name, r.error_code) for r in response.results] == [(name, 0)]
    assert len(admin.describe_topics([name])[0]["partitions"]) == 4
    response = admin.create_partitions({name: NewPartitions(3)}, raise_errors=False)
    assert [(r.error_code, r.error_message) for r in response.results] == [(37, f"The topic {name} currently has 4 partition(s); 3 would not be an increase.")]
    assert len(server.broker.topics.get(name).partitions) == 4


def test_describe_configs_topic_and_broker(admin: KafkaAdminClient, server: Server) -> None:
    name = _name()
    admin.create_topics([NewTopic(name, 1, 1, topic_configs={"cleanup.policy": "compact"})])
    configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)], config_filter="all")
    topic = configs["topic"][name]
    assert topic["retention.bytes"] == {
        "value": "-1", "read_only": False, "config_source": "DEFAULT_CONFIG", "is_sensitive": False,
        "synonyms": [], "config_type": "LONG", "documentation": None,
    }
    assert topic["cleanup.policy"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"
    assert topic["retention.ms"]["value"] == "604800000"
    assert topic["message.timestamp.type"]["value"] == "CreateTime"
    assert topic["max.message.bytes"]["value"] == "1048588"

    broker = admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, 0)], config_filter="all")["broker"]["0"]
    assert broker["advertised.listeners"]["config_source"] == "STATIC_BROKER_CONFIG"
    assert broker["advertised.listeners"]["read_only"] is True
    assert broker["advertised.listeners"]["value"] == f"PLAINTEXT://{server.kafka_bootstrap}"
    assert broker["log.retention.hours"]["value"] == "168"
    assert broker["log.retention.ms"]["value"] is None

    with_synonyms = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)], include_synonyms=True, config_filter="all")
    assert with_synonyms["topic"][name]["segment.bytes"]["synonyms"] == [{"name": "log.segment.bytes", "value": "1073741824", "source": "DEFAULT_CONFIG"}]


def test_alter_configs_legacy_and_incremental(admin: KafkaAdminClient) -> None:
    name = _name()
    admin.create_topics([NewTopic(name, 1, 1, topic_configs={"retention.ms": "1000"})])
    # legacy AlterConfigs replaces the whole set; kafka-python sends the other
    # overrides along (read back with DescribeConfigs), so retention.ms stays
    admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, configs={"retention.bytes": "2048"})], incremental=False)
    topic = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)], config_filter="all")["topic"][name]
    assert (topic["retention.bytes"]["value"], topic["retention.bytes"]["config_source"]) == ("2048", "DYNAMIC_TOPIC_CONFIG")
    assert (topic["retention.ms"]["value"], topic["retention.ms"]["config_source"]) == ("1000", "DYNAMIC_TOPIC_CONFIG")

    admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name, configs={"cleanup.policy": ("APPEND", "compact"), "retention.bytes": ("DELETE", None), "segment.ms": "60000"})],
        incremental=True,
    )
    topic = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)], config_filter="all")["topic"][name]
    assert topic["cleanup.policy"]["value"] == "delete,compact"
    assert topic["retention.bytes"]["config_source"] == "DEFAULT_CONFIG"
    assert topic["segment.ms"]["value"] == "60000"

    # a dynamic broker config reaches topics without an override
    admin.alter_configs([ConfigResource(ConfigResourceType.BROKER, "0", configs={"log.retention.bytes": "4096"})], incremental=True)
    try:
        topic = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)], config_filter="all", include_synonyms=True)["topic"][name]
        assert topic["retention.bytes"]["value"] == "4096"
        assert topic["retention.bytes"]["config_source"] == "DYNAMIC_BROKER_CONFIG"
        assert topic["retention.bytes"]["synonyms"] == [
            {"name": "log.retention.bytes", "value": "4096", "source": "DYNAMIC_BROKER_CONFIG"},
            {"name": "log.retention.bytes", "value": "-1", "source": "DEFAULT_CONFIG"},
        ]
    finally:
        admin.alter_configs([ConfigResource(ConfigResourceType.BROKER, "0", configs={"log.retention.bytes": ("DELETE", None)})], incremental=True)


def test_describe_cluster(admin: KafkaAdminClient, server: Server) -> None:
    cluster = admin.describe_cluster()
    assert cluster["cluster_id"] == server.broker.cluster_id
    assert cluster["controller_id"] == 0
    assert [(b["broker_id"], f"{b['host']}:{b['port']}") for b in cluster["brokers"]] == [(0, server.kafka_bootstrap)]


def test_acls_create_describe_delete(admin: KafkaAdminClient) -> None:
    topic = _name()
    any_on_topic = ACLFilter(principal=None, host="*", operation=ACLOperation.ANY, permission_type=ACLPermissionType.ANY, resource_pattern=ResourcePattern(ResourceType.TOPIC, topic))
    acls, error = admin.describe_acls(any_on_topic)
    assert (acls, error) == ([], NoError)

    read = ACL(principal="User:test", host="*", operation=ACLOperation.READ, permission_type=ACLPermissionType.ALLOW, resource_pattern=ResourcePattern(ResourceType.TOPIC, topic))
    prefixed = ACL(principal="User:test", host="*", operation=ACLOperation.WRITE, permission_type=ACLPermissionType.ALLOW, resource_pattern=ResourcePattern(ResourceType.TOPIC, topic[:8], pattern_type=ACLResourcePatternType.PREFIXED))
    result = admin.create_acls([read, prefixed])
    assert (len(result["succeeded"]), len(result["failed"])) == (2, 0)

    acls, error = admin.describe_acls(any_on_topic)
    assert error is NoError and len(acls) == 1
    # MATCH finds the literal binding and the prefix binding that covers the name
    match = ACLFilter(principal=None, host=None, operation=ACLOperation.ANY, permission_type=ACLPermissionType.ANY, resource_pattern=ResourcePatternFilter(ResourceType.TOPIC, topic, ACLResourcePatternType.MATCH))
    acls, error = admin.describe_acls(match)
    assert sorted(a.operation.name for a in acls) == ["READ", "WRITE"]

    deleted = admin.delete_acls([ACLFilter(principal="User:test", host="*", operation=ACLOperation.ANY, permission_type=ACLPermissionType.ALLOW, resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY))])
    assert len(deleted[0][1]) == 2
    acls, error = admin.describe_acls(ACLFilter(principal="*", host="*", operation=ACLOperation.ANY, permission_type=ACLPermissionType.ANY, resource_pattern=ResourcePattern(ResourceType.TOPIC, topic)))
    assert acls == []


def test_log_dirs_elections_reassignments_quorum(admin: KafkaAdminClient) -> None:
    name = _name()
    admin.create_topics([NewTopic(name, 2, 1)])
    log_dirs = admin.describe_log_dirs()
    assert [r["broker"] for r in log_dirs] == [0]
    (log_dir,) = log_dirs[0]["log_dirs"]
    assert (log_dir["log_dir"], log_dir["error_code"]) == ("/var/lib/wiregate", 0)

    replica = TopicPartitionReplica(name, 0, 0)
    assert admin.alter_replica_log_dirs({replica: "/var/lib/wiregate"}) == {replica: NoError}

    response = admin.elect_leaders(0, {name: [0, 1]}, raise_errors=False)
    ((topic, partitions),) = [(r[0], r[1]) for r in response.replica_election_results]
    assert topic == name and sorted((p[0], p[1]) for p in partitions) == [(0, ElectionNotNeededError.errno), (1, ElectionNotNeededError.errno)]

    tp = TopicPartition(name, 0)
    assert admin.alter_partition_reassignments({tp: [0]}) == {tp: None}
    assert admin.list_partition_reassignments() == {}

    quorum = admin.describe_metadata_quorum()
    (partition,) = quorum["topics"][0]["partitions"]
    assert (quorum["topics"][0]["topic_name"], partition["leader_id"], [v["replica_id"] for v in partition["current_voters"]]) == ("__cluster_metadata", 0, [0])

    described = admin.describe_topic_partitions([name], response_partition_limit=1)
    assert [p["partition_index"] for p in described["topics"][0]["partitions"]] == [0]
    assert described["next_cursor"]["topic_name"] == name and described["next_cursor"]["partition_index"] == 1


# ------------------------------------------------------------ confluent-kafka
def test_confluent_topics(ck: AdminClient, server: Server) -> None:
    name, refused = _name(), _name()
    checked = _ck_wait(ck.create_topics([CKNewTopic(name, 2, 1)], validate_only=True))
    assert checked[name] is None and server.broker.topics.get(name) is None

    results = _ck_wait(ck.create_topics([CKNewTopic(name, 2, 1), CKNewTopic(refused, 1, 3)]))
    assert results[name] is None
    error = results[refused]
    assert error.code() == KafkaError.INVALID_REPLICATION_FACTOR
    assert "only 1 broker(s) are registered" in error.str()

    assert _ck_wait(ck.create_partitions([CKNewPartitions(name, 5)])) == {name: None}
    metadata = ck.list_topics(timeout=10)
    assert len(metadata.topics[name].partitions) == 5
    assert [b.id for b in metadata.brokers.values()] == [0]

    assert _ck_wait(ck.delete_topics([name])) == {name: None}
    assert name not in ck.list_topics(timeout=10).topics


def test_confluent_configs(ck: AdminClient) -> None:
    name = _name()
    _ck_wait(ck.create_topics([CKNewTopic(name, 1, 1, config={"retention.ms": "3600000"})]))
    resource = CKConfigResource(CKConfigResource.Type.TOPIC, name)
    (entries,) = _ck_wait(ck.describe_configs([resource])).values()
    assert entries["retention.ms"].value == "3600000"
    assert entries["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert entries["compression.type"].value == "producer" and entries["compression.type"].is_default

    change = CKConfigResource(
        CKConfigResource.Type.TOPIC,
        name,
        incremental_configs=[
            ConfigEntry("max.message.bytes", "2000000", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
        ],
    )
    assert list(_ck_wait(ck.incremental_alter_configs([change])).values()) == [None]
    (entries,) = _ck_wait(ck.describe_configs([resource])).values()
    assert entries["max.message.bytes"].value == "2000000"
    assert entries["retention.ms"].value == "604800000"

    bad = CKConfigResource(CKConfigResource.Type.TOPIC, name, incremental_configs=[ConfigEntry("retention.ms", "x", incremental_operation=AlterConfigOpType.SET)])
    (error,) = _ck_wait(ck.incremental_alter_configs([bad])).values()
    assert error.code() == KafkaError.INVALID_CONFIG

    broker = CKConfigResource(CKConfigResource.Type.BROKER, "0")
    (entries,) = _ck_wait(ck.describe_configs([broker])).values()
    assert entries["num.partitions"].value == "1" and entries["num.partitions"].is_read_only


def test_confluent_describe_cluster_and_topics(ck: AdminClient, server: Server) -> None:
    from confluent_kafka import TopicCollection

    cluster = ck.describe_cluster(include_authorized_operations=True).result(timeout=10)
    assert cluster.cluster_id == server.broker.cluster_id
    assert cluster.controller.id == 0 and [n.id for n in cluster.nodes] == [0]
    assert len(cluster.authorized_operations) == 7

    name = _name()
    _ck_wait(ck.create_topics([CKNewTopic(name, 2, 1)]))
    (description,) = _ck_wait(ck.describe_topics(TopicCollection([name]), include_authorized_operations=True)).values()
    assert description.name == name and len(description.partitions) == 2
    # librdkafka prints topic ids as unpadded base64
    expected_id = base64.b64encode(server.broker.topics.get(name).id.bytes).decode().rstrip("=")
    assert str(description.topic_id) == expected_id
    assert len(description.authorized_operations) == 8


# -------------------------------------------------------------------- aiokafka
def test_aiokafka_admin(server: Server) -> None:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin import NewPartitions as AIONewPartitions
    from aiokafka.admin import NewTopic as AIONewTopic
    from aiokafka.admin.config_resource import ConfigResource as AIOConfigResource
    from aiokafka.admin.config_resource import ConfigResourceType as AIOConfigResourceType

    name = _name()

    async def scenario() -> None:
        client = AIOKafkaAdminClient(bootstrap_servers=server.kafka_bootstrap)
        await client.start()
        try:
            await client.create_topics([AIONewTopic(name, 2, 1)])
            assert name in await client.list_topics()
            await client.create_partitions({name: AIONewPartitions(3)})
            resource = AIOConfigResource(AIOConfigResourceType.TOPIC, name, {"retention.ms": "5000"})
            await client.alter_configs([resource])
            (response,) = await client.describe_configs([AIOConfigResource(AIOConfigResourceType.TOPIC, name)])
            entries = {entry[0]: entry[1] for entry in response.resources[0][4]}
            assert entries["retention.ms"] == "5000"
            await client.delete_topics([name])
            assert name not in await client.list_topics()
        finally:
            await client.close()

    asyncio.run(scenario())
    assert server.broker.topics.get(name) is None
