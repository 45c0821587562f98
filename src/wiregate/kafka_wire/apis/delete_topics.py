"""DeleteTopics (key 20), v1-v6.

Behavior (Kafka 4.0's ControllerApis.deleteTopics):
- v1-v5 name topics; v6 names or ids.  An unknown name gets
  UNKNOWN_TOPIC_OR_PARTITION, an unknown id UNKNOWN_TOPIC_ID.
- A name or id given twice gets INVALID_REQUEST ("Duplicate topic name." /
  "Duplicate topic id."); neither or both of name and id, INVALID_REQUEST;
  a name that maps to an id also given, INVALID_REQUEST.
- With ``delete.topic.enable=false``: v1-v2 INVALID_REQUEST, v3+
  TOPIC_DELETION_DISABLED, for every topic.
- Kafka shuffles the results so that positions reveal nothing; wiregate
  lists refusals first, then the deleted topics.
- Deletion is immediate; parked fetches on the topic are woken.
"""

from __future__ import annotations

import uuid
from typing import Any

from kio.schema.errors import ErrorCode

from .. import configs
from ..registry import handles

ZERO = uuid.UUID(int=0)


@handles(20, "DeleteTopics", 1, 6)
def delete_topics(ctx: Any, request: Any) -> Any:
    topics = ctx.broker.topics
    if ctx.api_version >= 6:
        wanted = [(t.name, t.topic_id if t.topic_id is not None else ZERO) for t in request.topics]
    else:
        wanted = [(name, ZERO) for name in request.topic_names]
    if (configs.broker_value(ctx.broker, "delete.topic.enable") or "true").strip().lower() != "true":
        code = ErrorCode.invalid_request if ctx.api_version < 3 else ErrorCode.topic_deletion_disabled
        message = "Topic deletion is disabled." if ctx.api_version < 3 else None
        return ctx.respond(responses=[dict(name=name, topic_id=topic_id, error_code=code, error_message=message) for name, topic_id in wanted])

    results: list[dict[str, Any]] = []

    def answer(name: str | None, topic_id: uuid.UUID, code: ErrorCode, message: str | None = None) -> None:
        results.append(dict(name=name, topic_id=topic_id, error_code=code, error_message=message))

    names = [name for name, topic_id in wanted if name is not None and topic_id == ZERO]
    ids = [topic_id for name, topic_id in wanted if name is None and topic_id != ZERO]
    for name, topic_id in wanted:
        if name is None and topic_id == ZERO:
            answer(None, ZERO, ErrorCode.invalid_request, "Neither topic name nor id were specified.")
        elif name is not None and topic_id != ZERO:
            answer(name, topic_id, ErrorCode.invalid_request, "You may not specify both topic name and topic id.")
    duplicate_names = {n for n in names if names.count(n) > 1}
    duplicate_ids = {i for i in ids if ids.count(i) > 1}
    for name in dict.fromkeys(n for n in names if n in duplicate_names):
        answer(name, ZERO, ErrorCode.invalid_request, "Duplicate topic name.")
    for topic_id in dict.fromkeys(i for i in ids if i in duplicate_ids):
        answer(None, topic_id, ErrorCode.invalid_request, "Duplicate topic id.")

    to_delete: dict[uuid.UUID, Any] = {}
    for topic_id in dict.fromkeys(i for i in ids if i not in duplicate_ids):
        topic = topics.by_id.get(topic_id)
        if topic is None:
            answer(None, topic_id, ErrorCode.unknown_topic_id, "This server does not host this topic ID.")
        else:
            to_delete[topic_id] = topic
    for name in dict.fromkeys(n for n in names if n not in duplicate_names):
        topic = topics.get(name)
        if topic is None:
            answer(name, ZERO, ErrorCode.unknown_topic_or_partition, "This server does not host this topic-partition.")
        elif topic.id in to_delete or topic.id in duplicate_ids:
            to_delete.pop(topic.id, None)
            answer(name, topic.id, ErrorCode.invalid_request, "The provided topic name maps to an ID that was already supplied.")
        else:
            to_delete[topic.id] = topic
    for topic_id, topic in to_delete.items():
        topics.delete(topic)
        answer(topic.name, topic_id, ErrorCode.none)
    return ctx.respond(responses=results)
