"""The Kafka side of retention and compaction (``core/retention.py``).

- A topic's :class:`~wiregate.core.retention.LogPolicy` comes from its
  effective configs through the config layers of ``configs.py`` (topic
  override, broker synonyms such as ``log.retention.ms`` →
  ``log.retention.minutes`` → ``log.retention.hours``, ``log.roll.ms``,
  ``log.segment.bytes``, ``log.cleanup.policy``, Kafka 4.0's defaults).  It
  is resolved again whenever a topic override or a broker config layer
  changes.  An override set without validation (``wiregate.testing``'s
  ``create_topic``) is used even where Kafka would refuse it, so tests can
  have segments smaller than ``segment.bytes``' 1 MiB minimum.
- The broker-wide :class:`~wiregate.core.retention.CleanerSettings` are
  ``log.retention.check.interval.ms`` (300000), ``log.cleaner.backoff.ms``
  (15000) and ``log.cleaner.enable`` (true): static (``--kafka-config``) or,
  for the backoff, dynamic broker configs.
- :func:`ensure_cleaner` attaches one :class:`~wiregate.core.retention.Cleaner`
  to the broker's topics the first time a Produce, Fetch, ListOffsets or
  DeleteRecords request is handled (and again after ``Broker.reset()``,
  which replaces the topics; the old cleaner's timers then stop).  Its
  first retention check runs one interval later, as Kafka's first runs
  after a delay.
"""

from __future__ import annotations

from typing import Any

from wiregate.core.retention import Cleaner, CleanerSettings, LogPolicy

from . import records
from .configs import ConfigError, broker_value, topic_value

_DEFAULT = LogPolicy()


def _layers(broker: Any, topic: Any) -> tuple[dict[str, str], ...]:
    return (
        topic.configs,
        getattr(broker, "kafka_dynamic_broker_configs", {}),
        getattr(broker, "kafka_dynamic_default_configs", {}),
        getattr(broker, "kafka_configs", {}),
    )


def _number(broker: Any, topic: Any, name: str, default: Any, kind: type = int) -> Any:
    try:
        value = topic_value(broker, topic, name)
    except ConfigError:
        # an override Kafka would refuse, set without validation
        # (wiregate.testing's create_topic): taken as it is, so tests can
        # use segments smaller than segment.bytes' 1 MiB minimum
        value = topic.configs.get(name)
    try:
        return kind(value) if value is not None else default
    except ValueError:
        return default


def log_policy(broker: Any, topic: Any) -> LogPolicy:
    """The topic's effective retention and compaction configs."""
    layers = _layers(broker, topic)
    cached = topic.policy_cache
    if cached is not None and cached[0] == layers:
        return cached[1]
    policies = {item.strip() for item in (topic_value(broker, topic, "cleanup.policy") or "delete").split(",")}
    policy = LogPolicy(
        segment_bytes=_number(broker, topic, "segment.bytes", _DEFAULT.segment_bytes),
        segment_ms=_number(broker, topic, "segment.ms", _DEFAULT.segment_ms),
        delete="delete" in policies,
        compact="compact" in policies,
        retention_ms=_number(broker, topic, "retention.ms", _DEFAULT.retention_ms),
        retention_bytes=_number(broker, topic, "retention.bytes", _DEFAULT.retention_bytes),
        delete_retention_ms=_number(broker, topic, "delete.retention.ms", _DEFAULT.delete_retention_ms),
        min_cleanable_dirty_ratio=_number(broker, topic, "min.cleanable.dirty.ratio", _DEFAULT.min_cleanable_dirty_ratio, float),
        min_compaction_lag_ms=_number(broker, topic, "min.compaction.lag.ms", _DEFAULT.min_compaction_lag_ms),
        max_compaction_lag_ms=_number(broker, topic, "max.compaction.lag.ms", _DEFAULT.max_compaction_lag_ms),
    )
    topic.policy_cache = (tuple(dict(layer) for layer in layers), policy)
    return policy


def cleaner_settings(broker: Any) -> CleanerSettings:
    """The broker's retention check interval, cleaner backoff and cleaner switch."""

    def number(name: str, default: int) -> int:
        try:
            return max(1, int(broker_value(broker, name) or default))
        except ValueError:
            return default

    return CleanerSettings(
        retention_check_interval_ms=number("log.retention.check.interval.ms", 300000),
        cleaner_backoff_ms=number("log.cleaner.backoff.ms", 15000),
        cleaner_enabled=(broker_value(broker, "log.cleaner.enable") or "true").strip().lower() != "false",
    )


def ensure_cleaner(broker: Any) -> Cleaner:
    """The broker's cleaner, attached and started on first use."""
    topics = broker.topics
    cleaner = topics.cleaner
    if cleaner is None:
        cleaner = Cleaner(
            topics,
            broker.scheduler,
            lambda topic: log_policy(broker, topic),
            records.COMPACTION_CODEC,
            lambda: cleaner_settings(broker),
            alive=lambda: broker.topics is topics,
        )
        topics.cleaner = cleaner
        cleaner.start()
    return cleaner
