"""CreateTopics (key 19), v2-v7.

Behavior (Kafka 4.0's ControllerApis.createTopics and
ReplicationControlManager.createTopics, on a single broker):
- A name given twice gets INVALID_REQUEST "Duplicate topic name." (listed
  after the others); ``__cluster_metadata`` INVALID_REQUEST.
- Checks in Kafka's order: the name (INVALID_TOPIC_EXCEPTION with
  Topic.validate's text; a name colliding with an existing one through '.'
  and '_'), TOPIC_ALREADY_EXISTS, configs (INVALID_CONFIG for nulls, unknown
  names, bad values), manual assignments (INVALID_REQUEST unless partitions
  and replication factor are -1; INVALID_REPLICA_ASSIGNMENT for brokers
  other than 1, duplicates, gaps), replication factor (INVALID_REPLICATION_FACTOR:
  0 or below -1, or above the one registered broker), partitions
  (INVALID_PARTITIONS for 0 or below -1).
- -1 means the broker's num.partitions / default.replication.factor.
- validate_only runs every check and creates nothing.
- More than 10000 partitions in one request (Kafka 4.0's
  MAX_PARTITIONS_PER_BATCH): every topic POLICY_VIOLATION "Excessively large
  number of partitions per request.".
- v5+ answers with the partition count, replication factor and every topic
  config with its value and source; v7 with the topic id.
- Creation is immediate: there is no controller to wait for, so the
  request's timeout is never reached.
"""

from __future__ import annotations

import uuid
from typing import Any

from kio.schema.errors import ErrorCode

from .. import configs
from ..registry import handles
from .metadata import BROKER_ID, topic_name_problem

CLUSTER_METADATA_TOPIC = "__cluster_metadata"


class _Refused(Exception):
    def __init__(self, code: ErrorCode, message: str | None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _partition_count(broker: Any, topic: Any) -> tuple[int, int]:
    """(partitions, replication factor) the topic would get, or raise _Refused."""
    if topic.assignments:
        if topic.replication_factor != -1:
            raise _Refused(ErrorCode.invalid_request, "A manual partition assignment was specified, but replication factor was not set to -1.")
        if topic.num_partitions != -1:
            raise _Refused(ErrorCode.invalid_request, "A manual partition assignment was specified, but numPartitions was not set to -1.")
        seen: set[int] = set()
        factor = None
        for assignment in topic.assignments:
            if assignment.partition_index in seen:
                raise _Refused(ErrorCode.invalid_replica_assignment, f"Found multiple manual partition assignments for partition {assignment.partition_index}")
            validate_assignment(list(assignment.broker_ids), factor)
            factor = len(assignment.broker_ids)
            seen.add(assignment.partition_index)
        if seen != set(range(len(seen))):
            raise _Refused(ErrorCode.invalid_replica_assignment, "partitions should be a consecutive 0-based integer sequence")
        return len(seen), factor or 1
    if topic.replication_factor < -1 or topic.replication_factor == 0:
        raise _Refused(ErrorCode.invalid_replication_factor, "Replication factor must be larger than 0, or -1 to use the default value.")
    if topic.num_partitions < -1 or topic.num_partitions == 0:
        raise _Refused(ErrorCode.invalid_partitions, "Number of partitions was set to an invalid non-positive value.")
    partitions = topic.num_partitions if topic.num_partitions != -1 else int(configs.broker_value(broker, "num.partitions") or 1)
    factor = topic.replication_factor if topic.replication_factor != -1 else int(configs.broker_value(broker, "default.replication.factor") or 1)
    if factor > 1:
        # StripedReplicaPlacer's refusal, prefixed by the controller
        raise _Refused(
            ErrorCode.invalid_replication_factor,
            f"Unable to replicate the partition {factor} time(s): The target replication factor of {factor} cannot be reached because only 1 broker(s) are registered.",
        )
    return partitions, factor


def validate_assignment(broker_ids: list[int], factor: int | None) -> None:
    """ReplicationControlManager.validateManualPartitionAssignment on a one-broker cluster."""
    if not broker_ids:
        raise _Refused(ErrorCode.invalid_replica_assignment, "The manual partition assignment includes an empty replica list.")
    previous = None
    for broker_id in sorted(broker_ids):
        if broker_id != BROKER_ID:
            raise _Refused(ErrorCode.invalid_replica_assignment, f"The manual partition assignment includes broker {broker_id}, but no such broker is registered.")
        if broker_id == previous:
            raise _Refused(ErrorCode.invalid_replica_assignment, f"The manual partition assignment includes the broker {previous} more than once.")
        previous = broker_id
    if factor is not None and len(broker_ids) != factor:
        raise _Refused(
            ErrorCode.invalid_replica_assignment,
            f"The manual partition assignment includes a partition with {len(broker_ids)} replica(s), but this is not consistent with previous partitions, which have {factor} replica(s).",
        )


def _collision(topics: Any, name: str) -> str | None:
    # Topic.hasCollisionChars / unifyCollisionChars: '.' and '_' collide in metric names
    if "." not in name and "_" not in name:
        return None
    unified = name.replace(".", "_")
    for existing in topics.by_name:
        if existing != name and existing.replace(".", "_") == unified:
            return existing
    return None


#: Kafka 4.0's ReplicationControlManager.MAX_PARTITIONS_PER_BATCH (KAFKA-17870)
MAX_PARTITIONS_PER_REQUEST = 10000


def _total_partitions(broker: Any, topics: Any) -> int:
    """Kafka's validateTotalNumberOfPartitions: what the request would create."""
    total = 0
    for topic in topics:
        if topic.assignments:
            total += len(topic.assignments)
        elif topic.num_partitions == -1:
            default = configs.broker_value(broker, "num.partitions") or "1"
            total += int(default) if default.lstrip("-").isdigit() else 1
        elif topic.num_partitions > 0:
            total += topic.num_partitions
    return total


@handles(19, "CreateTopics", 2, 7)
def create_topics(ctx: Any, request: Any) -> Any:
    broker = ctx.broker
    topics = broker.topics
    names = [t.name for t in request.topics]
    duplicates = {name for name in names if names.count(name) > 1}
    results = []
    if _total_partitions(broker, request.topics) > MAX_PARTITIONS_PER_REQUEST:
        # Kafka 4.0 refuses the whole request (KAFKA-17870)
        text = "Excessively large number of partitions per request."
        return ctx.respond(topics=[_error(name, ErrorCode.policy_violation, text) for name in dict.fromkeys(names)])
    for topic in request.topics:
        if topic.name in duplicates:
            continue
        if topic.name == CLUSTER_METADATA_TOPIC:
            results.append(_error(topic.name, ErrorCode.invalid_request, f"Creation of internal topic {CLUSTER_METADATA_TOPIC} is prohibited."))
            continue
        try:
            results.append(_create(broker, topics, topic, request.validate_only))
        except _Refused as refused:
            results.append(_error(topic.name, refused.code, refused.message))
    for name in dict.fromkeys(n for n in names if n in duplicates):
        results.append(_error(name, ErrorCode.invalid_request, "Duplicate topic name."))
    return ctx.respond(topics=results)


def _create(broker: Any, topics: Any, topic: Any, validate_only: bool) -> dict[str, Any]:
    name = topic.name
    problem = topic_name_problem(name)
    error: _Refused | None = None
    if problem is not None:
        error = _Refused(ErrorCode.invalid_topic_exception, problem)
    else:
        colliding = _collision(topics, name)
        if colliding is not None:
            error = _Refused(ErrorCode.invalid_topic_exception, f"Topic '{name}' collides with existing topic: {colliding}")
    if name in topics:
        error = _Refused(ErrorCode.topic_already_exists, f"Topic '{name}' already exists.")
    if error is not None:
        raise error
    overrides = {c.name: c.value for c in topic.configs}
    try:
        configs.validate_topic_configs(overrides)
    except configs.ConfigError as refused:
        raise _Refused(ErrorCode(refused.code), refused.message) from None
    partitions, factor = _partition_count(broker, topic)
    if validate_only:
        topic_id = uuid.uuid4()
    else:
        created = topics.create(name, partitions, dict(overrides))  # type: ignore[arg-type]
        topic_id = created.id
    return dict(
        name=name,
        topic_id=topic_id,
        error_code=ErrorCode.none,
        error_message=None,
        topic_config_error_code=0,
        num_partitions=partitions,
        replication_factor=factor,
        configs=configs.effective_topic_configs(broker, overrides),  # type: ignore[arg-type]
    )


def _error(name: str, code: ErrorCode, message: str | None) -> dict[str, Any]:
    return dict(name=name, topic_id=uuid.UUID(int=0), error_code=code, error_message=message, num_partitions=-1, replication_factor=-1, configs=[])
