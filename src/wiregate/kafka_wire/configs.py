"""Kafka 4.0's topic and broker configs: names, types, defaults, validation, sources.

What DescribeConfigs, AlterConfigs, IncrementalAlterConfigs and CreateTopics
need to answer as a single Kafka 4.0 broker (KRaft, combined broker and
controller, node id 1) would:

- Topic configs are LogConfig's definitions.  A topic config's effective
  value is the topic's override, else the first of its broker synonyms
  (``log.retention.ms`` → ``log.retention.minutes`` → ``log.retention.hours``)
  that has a value in a broker layer, else its own default.
- Broker layers, highest precedence first: dynamic per-broker configs
  (resource name "0", ``broker.kafka_dynamic_broker_configs``), dynamic
  cluster defaults (resource name "", ``broker.kafka_dynamic_default_configs``),
  static configs (what the server was started with: ``broker.kafka_configs``
  plus the listener and node settings), then KafkaConfig's defaults.
- Values are validated as ConfigDef does (types, ranges, allowed strings) and
  rejected with its texts: ``Invalid value x for configuration retention.ms:
  Not a number of type LONG``.
- Synonym lists follow ConfigHelper: every layer holding a synonym, in
  precedence order, starting from the described name.

The broker table holds the configs clients look at (listeners, log defaults,
thread pools, group and transaction settings); Kafka's full KafkaConfig has
more, which wiregate does not list.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Callable, Iterable, Mapping

#: DescribeConfigs config_source values
UNKNOWN_SOURCE = 0
DYNAMIC_TOPIC_CONFIG = 1
DYNAMIC_BROKER_CONFIG = 2
DYNAMIC_DEFAULT_BROKER_CONFIG = 3
STATIC_BROKER_CONFIG = 4
DEFAULT_CONFIG = 5

#: DescribeConfigs config_type values
CONFIG_TYPES = {"BOOLEAN": 1, "STRING": 2, "INT": 3, "SHORT": 4, "LONG": 5, "DOUBLE": 6, "LIST": 7, "CLASS": 8, "PASSWORD": 9}

#: config resource types
TOPIC_RESOURCE = 2
BROKER_RESOURCE = 4

#: IncrementalAlterConfigs operations
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3
OPERATION_NAMES = {SET: "SET", DELETE: "DELETE", APPEND: "APPEND", SUBTRACT: "SUBTRACT"}

LONG_MAX = 9223372036854775807
INT_MAX = 2147483647


class ConfigError(Exception):
    """A config change Kafka refuses; ``code`` is the Kafka error code (INVALID_CONFIG 40, INVALID_REQUEST 42)."""

    def __init__(self, message: str, code: int = 40) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


Validator = Callable[[str, Any], "str | None"]


@dataclasses.dataclass(frozen=True, slots=True)
class ConfigDef:
    """One config: ConfigDef's type, default (as Kafka prints it) and validator."""

    name: str
    type: str
    default: str | None
    validator: Validator | None = None
    #: broker configs: can be altered at run time (read_only is its negation)
    dynamic: bool = True

    @property
    def sensitive(self) -> bool:
        return self.type == "PASSWORD"

    @property
    def type_id(self) -> int:
        return CONFIG_TYPES[self.type]


# ------------------------------------------------------------ validators
def at_least(minimum: float) -> Validator:
    def check(name: str, value: Any) -> str | None:
        if value is not None and value < minimum:
            return f"Value must be at least {minimum}"
        return None

    return check


def between(minimum: float, maximum: float) -> Validator:
    def check(name: str, value: Any) -> str | None:
        if value is None:
            return None
        if value < minimum:
            return f"Value must be at least {minimum}"
        if value > maximum:
            return f"Value must be no more than {maximum}"
        return None

    return check


def one_of(*allowed: str) -> Validator:
    message = "String must be one of: " + ", ".join(allowed)

    def check(name: str, value: Any) -> str | None:
        items = value if isinstance(value, list) else [value]
        for item in items:
            if item not in allowed:
                return message
        return None

    return check


def _gzip_level(name: str, value: Any) -> str | None:
    # CompressionType.GZIP's level validator: 1..9, or -1 (Deflater's default)
    if value is not None and (value > 9 or (value < 1 and value != -1)):
        return "Value must be between 1 and 9 or equal to -1"
    return None


_REPLICA = re.compile(r"^\s*\d+\s*:\s*\d+\s*$")


def _throttled_replicas(name: str, value: Any) -> str | None:
    # ThrottledReplicaListValidator: "*" or partitionId:brokerId pairs
    if value == ["*"] or all(_REPLICA.match(item) for item in value):
        return None
    return "must be the literal '*' or a list of replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],..."


# ----------------------------------------------------------------- topic
def _topic(name: str, type_: str, default: str | None, validator: Validator | None = None) -> ConfigDef:
    return ConfigDef(name, type_, default, validator)


#: LogConfig's definitions in Kafka 4.0 (message.format.version and
#: message.timestamp.difference.max.ms were removed in 4.0; KIP-1030 raised
#: segment.bytes' minimum to 1 MiB and set message.timestamp.after.max.ms to an hour)
TOPIC_CONFIGS: dict[str, ConfigDef] = {
    d.name: d
    for d in [
        _topic("cleanup.policy", "LIST", "delete", one_of("compact", "delete")),
        _topic("compression.gzip.level", "INT", "-1", _gzip_level),
        _topic("compression.lz4.level", "INT", "9", between(1, 17)),
        _topic("compression.type", "STRING", "producer", one_of("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")),
        _topic("compression.zstd.level", "INT", "3", between(-131072, 22)),
        _topic("delete.retention.ms", "LONG", "86400000", at_least(0)),
        _topic("file.delete.delay.ms", "LONG", "60000", at_least(0)),
        _topic("flush.messages", "LONG", str(LONG_MAX), at_least(1)),
        _topic("flush.ms", "LONG", str(LONG_MAX), at_least(0)),
        _topic("follower.replication.throttled.replicas", "LIST", "", _throttled_replicas),
        _topic("index.interval.bytes", "INT", "4096", at_least(0)),
        _topic("leader.replication.throttled.replicas", "LIST", "", _throttled_replicas),
        _topic("local.retention.bytes", "LONG", "-2", at_least(-2)),
        _topic("local.retention.ms", "LONG", "-2", at_least(-2)),
        _topic("max.compaction.lag.ms", "LONG", str(LONG_MAX), at_least(1)),
        _topic("max.message.bytes", "INT", "1048588", at_least(0)),
        _topic("message.downconversion.enable", "BOOLEAN", "true"),
        _topic("message.timestamp.after.max.ms", "LONG", "3600000", at_least(0)),
        _topic("message.timestamp.before.max.ms", "LONG", str(LONG_MAX), at_least(0)),
        _topic("message.timestamp.type", "STRING", "CreateTime", one_of("CreateTime", "LogAppendTime")),
        _topic("min.cleanable.dirty.ratio", "DOUBLE", "0.5", between(0, 1)),
        _topic("min.compaction.lag.ms", "LONG", "0", at_least(0)),
        _topic("min.insync.replicas", "INT", "1", at_least(1)),
        _topic("preallocate", "BOOLEAN", "false"),
        _topic("remote.log.copy.disable", "BOOLEAN", "false"),
        _topic("remote.log.delete.on.disable", "BOOLEAN", "false"),
        _topic("remote.storage.enable", "BOOLEAN", "false"),
        _topic("retention.bytes", "LONG", "-1"),
        _topic("retention.ms", "LONG", "604800000", at_least(-1)),
        _topic("segment.bytes", "INT", "1073741824", at_least(1048576)),
        _topic("segment.index.bytes", "INT", "10485760", at_least(4)),
        _topic("segment.jitter.ms", "LONG", "0", at_least(0)),
        _topic("segment.ms", "LONG", "604800000", at_least(1)),
        _topic("unclean.leader.election.enable", "BOOLEAN", "false"),
    ]
}

_HOURS = 3600000
_MINUTES = 60000

#: ServerTopicConfigSynonyms: topic config -> broker configs in precedence
#: order, each with the factor that converts it to the topic config's unit
TOPIC_SYNONYMS: dict[str, tuple[tuple[str, int], ...]] = {
    "segment.bytes": (("log.segment.bytes", 1),),
    "segment.ms": (("log.roll.ms", 1), ("log.roll.hours", _HOURS)),
    "segment.jitter.ms": (("log.roll.jitter.ms", 1), ("log.roll.jitter.hours", _HOURS)),
    "segment.index.bytes": (("log.index.size.max.bytes", 1),),
    "flush.messages": (("log.flush.interval.messages", 1),),
    "flush.ms": (("log.flush.interval.ms", 1), ("log.flush.scheduler.interval.ms", 1)),
    "retention.bytes": (("log.retention.bytes", 1),),
    "retention.ms": (("log.retention.ms", 1), ("log.retention.minutes", _MINUTES), ("log.retention.hours", _HOURS)),
    "max.message.bytes": (("message.max.bytes", 1),),
    "index.interval.bytes": (("log.index.interval.bytes", 1),),
    "delete.retention.ms": (("log.cleaner.delete.retention.ms", 1),),
    "min.compaction.lag.ms": (("log.cleaner.min.compaction.lag.ms", 1),),
    "max.compaction.lag.ms": (("log.cleaner.max.compaction.lag.ms", 1),),
    "file.delete.delay.ms": (("log.segment.delete.delay.ms", 1),),
    "min.cleanable.dirty.ratio": (("log.cleaner.min.cleanable.ratio", 1),),
    "cleanup.policy": (("log.cleanup.policy", 1),),
    "unclean.leader.election.enable": (("unclean.leader.election.enable", 1),),
    "min.insync.replicas": (("min.insync.replicas", 1),),
    "compression.type": (("compression.type", 1),),
    "compression.gzip.level": (("compression.gzip.level", 1),),
    "compression.lz4.level": (("compression.lz4.level", 1),),
    "compression.zstd.level": (("compression.zstd.level", 1),),
    "preallocate": (("log.preallocate", 1),),
    "message.timestamp.type": (("log.message.timestamp.type", 1),),
    "message.timestamp.before.max.ms": (("log.message.timestamp.before.max.ms", 1),),
    "message.timestamp.after.max.ms": (("log.message.timestamp.after.max.ms", 1),),
    "message.downconversion.enable": (("log.message.downconversion.enable", 1),),
    "local.retention.ms": (("log.local.retention.ms", 1),),
    "local.retention.bytes": (("log.local.retention.bytes", 1),),
}


# ---------------------------------------------------------------- broker
def _broker(name: str, type_: str, default: str | None, validator: Validator | None = None, *, dynamic: bool = False) -> ConfigDef:
    return ConfigDef(name, type_, default, validator, dynamic)


_LOG_DYNAMIC = {synonyms[0][0] for synonyms in TOPIC_SYNONYMS.values()}

#: KafkaConfig definitions clients commonly read (Kafka 4.0 defaults).
#: ``dynamic`` follows DynamicBrokerConfig.AllDynamicConfigs, except that
#: advertised.listeners is read-only under KRaft in 4.0.
BROKER_CONFIGS: dict[str, ConfigDef] = {
    d.name: d
    for d in [
        # log defaults (topic config synonyms)
        _broker("log.segment.bytes", "INT", "1073741824", at_least(1048576)),
        _broker("log.roll.ms", "LONG", None, at_least(1)),
        _broker("log.roll.hours", "INT", "168", at_least(1)),
        _broker("log.roll.jitter.ms", "LONG", None),
        _broker("log.roll.jitter.hours", "INT", "0", at_least(0)),
        _broker("log.index.size.max.bytes", "INT", "10485760", at_least(4)),
        _broker("log.flush.interval.messages", "LONG", str(LONG_MAX), at_least(1)),
        _broker("log.flush.interval.ms", "LONG", None),
        _broker("log.flush.scheduler.interval.ms", "LONG", str(LONG_MAX)),
        _broker("log.retention.bytes", "LONG", "-1"),
        _broker("log.retention.ms", "LONG", None),
        _broker("log.retention.minutes", "INT", None),
        _broker("log.retention.hours", "INT", "168"),
        _broker("message.max.bytes", "INT", "1048588", at_least(0)),
        _broker("log.index.interval.bytes", "INT", "4096", at_least(0)),
        _broker("log.cleaner.delete.retention.ms", "LONG", "86400000", at_least(0)),
        _broker("log.cleaner.min.compaction.lag.ms", "LONG", "0", at_least(0)),
        _broker("log.cleaner.max.compaction.lag.ms", "LONG", str(LONG_MAX), at_least(1)),
        _broker("log.segment.delete.delay.ms", "LONG", "60000", at_least(0)),
        _broker("log.cleaner.min.cleanable.ratio", "DOUBLE", "0.5", between(0, 1)),
        _broker("log.cleanup.policy", "LIST", "delete", one_of("compact", "delete")),
        _broker("unclean.leader.election.enable", "BOOLEAN", "false"),
        _broker("min.insync.replicas", "INT", "1", at_least(1)),
        _broker("compression.type", "STRING", "producer", one_of("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")),
        _broker("compression.gzip.level", "INT", "-1", _gzip_level),
        _broker("compression.lz4.level", "INT", "9", between(1, 17)),
        _broker("compression.zstd.level", "INT", "3", between(-131072, 22)),
        _broker("log.preallocate", "BOOLEAN", "false"),
        _broker("log.message.timestamp.type", "STRING", "CreateTime", one_of("CreateTime", "LogAppendTime")),
        _broker("log.message.timestamp.before.max.ms", "LONG", str(LONG_MAX), at_least(0)),
        _broker("log.message.timestamp.after.max.ms", "LONG", "3600000", at_least(0)),
        _broker("log.message.downconversion.enable", "BOOLEAN", "true"),
        _broker("log.local.retention.ms", "LONG", "-2", at_least(-2)),
        _broker("log.local.retention.bytes", "LONG", "-2", at_least(-2)),
        # log cleaner and thread pools
        _broker("log.cleaner.threads", "INT", "1", at_least(0), dynamic=True),
        _broker("log.cleaner.io.max.bytes.per.second", "DOUBLE", "1.7976931348623157E308", dynamic=True),
        _broker("log.cleaner.dedupe.buffer.size", "LONG", "134217728", dynamic=True),
        _broker("log.cleaner.io.buffer.size", "INT", "524288", at_least(0), dynamic=True),
        _broker("log.cleaner.io.buffer.load.factor", "DOUBLE", "0.9", dynamic=True),
        _broker("log.cleaner.backoff.ms", "LONG", "15000", at_least(0), dynamic=True),
        _broker("log.cleaner.enable", "BOOLEAN", "true"),
        _broker("log.retention.check.interval.ms", "LONG", "300000", at_least(1)),
        _broker("num.io.threads", "INT", "8", at_least(1), dynamic=True),
        _broker("num.network.threads", "INT", "3", at_least(1), dynamic=True),
        _broker("num.replica.fetchers", "INT", "1", dynamic=True),
        _broker("num.recovery.threads.per.data.dir", "INT", "2", at_least(1), dynamic=True),
        _broker("background.threads", "INT", "10", at_least(1), dynamic=True),
        _broker("metric.reporters", "LIST", "org.apache.kafka.common.metrics.JmxReporter", dynamic=True),
        _broker("max.connections", "INT", str(INT_MAX), at_least(0), dynamic=True),
        _broker("max.connections.per.ip", "INT", str(INT_MAX), at_least(0), dynamic=True),
        _broker("max.connections.per.ip.overrides", "STRING", "", dynamic=True),
        _broker("max.connection.creation.rate", "INT", str(INT_MAX), at_least(0), dynamic=True),
        _broker("producer.id.expiration.ms", "INT", "86400000", at_least(1), dynamic=True),
        _broker("transaction.partition.verification.enable", "BOOLEAN", "true", dynamic=True),
        _broker("listeners", "STRING", "PLAINTEXT://:9092", dynamic=True),
        _broker("listener.security.protocol.map", "STRING", "SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT", dynamic=True),
        _broker("ssl.keystore.password", "PASSWORD", None, dynamic=True),
        _broker("ssl.key.password", "PASSWORD", None, dynamic=True),
        _broker("ssl.truststore.password", "PASSWORD", None, dynamic=True),
        _broker("sasl.jaas.config", "PASSWORD", None, dynamic=True),
        # read-only (static) settings
        _broker("advertised.listeners", "STRING", None),
        _broker("node.id", "INT", "-1"),
        _broker("broker.id", "INT", "-1"),
        _broker("process.roles", "LIST", "", one_of("broker", "controller")),
        _broker("controller.listener.names", "STRING", None),
        _broker("inter.broker.listener.name", "STRING", None),
        _broker("controller.quorum.voters", "LIST", ""),
        _broker("controller.quorum.bootstrap.servers", "LIST", ""),
        _broker("broker.rack", "STRING", None),
        _broker("log.dir", "STRING", "/tmp/kafka-logs"),
        _broker("log.dirs", "STRING", None),
        _broker("metadata.log.dir", "STRING", None),
        _broker("num.partitions", "INT", "1", at_least(1)),
        _broker("default.replication.factor", "INT", "1"),
        _broker("auto.create.topics.enable", "BOOLEAN", "true"),
        _broker("delete.topic.enable", "BOOLEAN", "true"),
        _broker("auto.leader.rebalance.enable", "BOOLEAN", "true"),
        _broker("offsets.topic.replication.factor", "SHORT", "3", at_least(1)),
        _broker("offsets.topic.num.partitions", "INT", "50", at_least(1)),
        _broker("offsets.retention.minutes", "INT", "10080", at_least(1)),
        _broker("transaction.state.log.replication.factor", "SHORT", "3", at_least(1)),
        _broker("transaction.state.log.min.isr", "INT", "2", at_least(1)),
        _broker("transaction.state.log.num.partitions", "INT", "50", at_least(1)),
        _broker("transactional.id.expiration.ms", "INT", "604800000", at_least(1)),
        _broker("transaction.max.timeout.ms", "INT", "900000", at_least(1)),
        _broker("group.initial.rebalance.delay.ms", "INT", "3000"),
        _broker("group.min.session.timeout.ms", "INT", "6000"),
        _broker("group.max.session.timeout.ms", "INT", "1800000"),
        _broker("group.coordinator.rebalance.protocols", "LIST", "classic,consumer"),
        _broker("socket.request.max.bytes", "INT", "104857600", at_least(1)),
        _broker("socket.send.buffer.bytes", "INT", "102400"),
        _broker("socket.receive.buffer.bytes", "INT", "102400"),
        _broker("replica.lag.time.max.ms", "LONG", "30000"),
        _broker("request.timeout.ms", "INT", "30000"),
        _broker("connections.max.idle.ms", "LONG", "600000"),
        _broker("queued.max.requests", "INT", "500", at_least(1)),
        _broker("authorizer.class.name", "STRING", ""),
        _broker("delegation.token.secret.key", "PASSWORD", None),
    ]
}
BROKER_CONFIGS = {name: dataclasses.replace(d, dynamic=d.dynamic or name in _LOG_DYNAMIC) for name, d in BROKER_CONFIGS.items()}

#: brokerConfigSynonyms: broker configs defined by several properties
_BROKER_SYNONYM_GROUPS = (
    ("log.roll.ms", "log.roll.hours"),
    ("log.roll.jitter.ms", "log.roll.jitter.hours"),
    ("log.flush.interval.ms", "log.flush.scheduler.interval.ms"),
    ("log.retention.ms", "log.retention.minutes", "log.retention.hours"),
)
#: DynamicBrokerConfig.PerBrokerConfigs: refused at the cluster-default level
PER_BROKER_CONFIGS = frozenset({"listeners", "listener.security.protocol.map", "ssl.keystore.password", "ssl.key.password", "ssl.truststore.password"})


def broker_synonyms(name: str) -> tuple[str, ...]:
    """DynamicBrokerConfig.brokerConfigSynonyms (without listener overrides)."""
    if name == "log.flush.interval.ms":
        return _BROKER_SYNONYM_GROUPS[2]
    for group in _BROKER_SYNONYM_GROUPS:
        if name in group and name != "log.flush.scheduler.interval.ms":
            return group
    return (name,)


# ----------------------------------------------------------------- parse
_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_BOUNDS = {"INT": (-(2**31), 2**31 - 1), "SHORT": (-(2**15), 2**15 - 1), "LONG": (-(2**63), 2**63 - 1)}


def _invalid(name: str, value: str, message: str) -> ConfigError:
    return ConfigError(f"Invalid value {value} for configuration {name}: {message}")


def parse(definition: ConfigDef, value: str) -> Any:
    """ConfigDef.parseType plus the validator: the typed value.

    Raises:
        ConfigError: INVALID_CONFIG with Kafka's text.
    """
    name = definition.name
    kind = definition.type
    trimmed = value.strip()
    parsed: Any
    if kind == "BOOLEAN":
        if trimmed.lower() not in ("true", "false"):
            raise _invalid(name, value, "Expected value to be either true or false")
        parsed = trimmed.lower() == "true"
    elif kind in _BOUNDS:
        lo, hi = _BOUNDS[kind]
        if not _INTEGER.match(trimmed) or not lo <= int(trimmed) <= hi:
            raise _invalid(name, value, f"Not a number of type {kind}")
        parsed = int(trimmed)
    elif kind == "DOUBLE":
        try:
            if "_" in trimmed:
                raise ValueError
            parsed = float(trimmed)
        except ValueError:
            raise _invalid(name, value, "Not a number of type DOUBLE") from None
    elif kind == "LIST":
        parsed = [item.strip() for item in trimmed.split(",")] if trimmed else []
    elif kind in ("STRING", "PASSWORD"):
        parsed = trimmed if kind == "STRING" else value
    else:  # CLASS
        parsed = trimmed
    if definition.validator is not None:
        problem = definition.validator(name, parsed)
        if problem is not None:
            raise _invalid(name, render(definition, parsed) if kind == "LIST" else value, problem)
    return parsed


def render(definition: ConfigDef, parsed: Any) -> str:
    """ConfigDef.convertToString: how Kafka prints a parsed value."""
    if parsed is None:
        return None  # type: ignore[return-value]
    if definition.type == "BOOLEAN":
        return "true" if parsed else "false"
    if definition.type == "LIST":
        return ",".join(parsed)
    if definition.type == "DOUBLE":
        return _java_double(parsed)
    return str(parsed)


def _java_double(value: float) -> str:
    # Double.toString: "0.5", "1.0", "1.0E10", "Infinity"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if math.isnan(value):
        return "NaN"
    if value != 0 and (abs(value) >= 1e7 or abs(value) < 1e-3):
        mantissa, exponent = f"{value:.16E}".split("E")
        mantissa = mantissa.rstrip("0")
        if mantissa.endswith("."):
            mantissa += "0"
        return f"{mantissa}E{int(exponent)}"
    text = repr(float(value))
    return text if "." in text or "e" in text else text + ".0"


def normalise(definition: ConfigDef, value: str) -> str:
    """The value as Kafka reports it after parsing (trimmed, canonical)."""
    return render(definition, parse(definition, value))


# ------------------------------------------------------------- topics
def validate_topic_configs(configs: Mapping[str, str | None]) -> None:
    """LogConfig.validate for a topic's complete set of overrides.

    Raises:
        ConfigError: INVALID_CONFIG for a null value, an unknown name, a bad
            value, or min.compaction.lag.ms above max.compaction.lag.ms.
    """
    nulls = [name for name, value in configs.items() if value is None]
    if nulls:
        raise ConfigError("Null value not supported for topic configs: " + ",".join(nulls))
    for name in configs:
        if name not in TOPIC_CONFIGS:
            raise ConfigError(f"Unknown topic config name: {name}")
    parsed = {name: parse(TOPIC_CONFIGS[name], value) for name, value in configs.items()}  # type: ignore[arg-type]
    low = parsed.get("min.compaction.lag.ms", 0)
    high = parsed.get("max.compaction.lag.ms", LONG_MAX)
    if low > high:
        raise ConfigError(f"conflict topic config setting min.compaction.lag.ms ({low}) > max.compaction.lag.ms ({high})")


def _layers(broker: Any, static: Mapping[str, str]) -> list[tuple[int, Mapping[str, str]]]:
    return [
        (DYNAMIC_BROKER_CONFIG, getattr(broker, "kafka_dynamic_broker_configs", {})),
        (DYNAMIC_DEFAULT_BROKER_CONFIG, getattr(broker, "kafka_dynamic_default_configs", {})),
        (STATIC_BROKER_CONFIG, static),
        (DEFAULT_CONFIG, _BROKER_DEFAULTS),
    ]


_BROKER_DEFAULTS: dict[str, str] = {name: d.default for name, d in BROKER_CONFIGS.items() if d.default is not None}


def static_configs(broker: Any, advertised: tuple[str, int] | None = None) -> dict[str, str]:
    """What the broker was started with: node settings, listeners, then ``broker.kafka_configs``."""
    configs = {"node.id": "0", "broker.id": "0", "process.roles": "broker,controller", "controller.listener.names": "CONTROLLER", "log.dirs": LOG_DIR}
    if advertised is not None:
        host, port = advertised
        configs["listeners"] = f"PLAINTEXT://{host}:{port}"
        configs["advertised.listeners"] = f"PLAINTEXT://{host}:{port}"
        configs["controller.quorum.voters"] = f"1@{host}:{port}"
    configs.update(getattr(broker, "kafka_configs", {}))
    return configs


#: the single log directory wiregate reports (DescribeLogDirs, log.dirs)
LOG_DIR = "/var/lib/wiregate"


def broker_value(broker: Any, name: str, static: Mapping[str, str] | None = None) -> str | None:
    """A broker config's effective value (dynamic per-broker, cluster default, static, default)."""
    layers = _layers(broker, static if static is not None else static_configs(broker))
    for _, layer in layers:
        if name in layer:
            return layer[name]
    return None


def topic_default(broker: Any, name: str, static: Mapping[str, str] | None = None) -> str | None:
    """What a topic config is without a topic override: from the broker synonyms, else the topic default.

    Without ``static``, answers are cached on the broker for as long as its
    config layers (dynamic per-broker, cluster default, static) compare
    equal to the copies the cache was built from: Produce asks for several
    values per partition, and resolving synonyms through every layer cost
    about 14 µs each.
    """
    if static is not None:
        return _topic_default(broker, name, static)
    layers = (
        getattr(broker, "kafka_dynamic_broker_configs", None),
        getattr(broker, "kafka_dynamic_default_configs", None),
        getattr(broker, "kafka_configs", None),
    )
    cache = getattr(broker, "_topic_defaults", None)
    if cache is None or cache[0] != layers:
        cache = (tuple(dict(layer) if layer is not None else None for layer in layers), {})
        try:
            broker._topic_defaults = cache
        except AttributeError:  # a broker stand-in that takes no attributes: no cache
            return _topic_default(broker, name, None)
    values = cache[1]
    if name not in values:
        values[name] = _topic_default(broker, name, None)
    return values[name]


def _topic_default(broker: Any, name: str, static: Mapping[str, str] | None) -> str | None:
    definition = TOPIC_CONFIGS.get(name)
    if definition is None:
        return None
    for synonym, factor in TOPIC_SYNONYMS.get(name, ()):
        value = broker_value(broker, synonym, static)
        if value is not None:
            try:
                if factor == 1:
                    return normalise(definition, value)
                return str(int(value.strip()) * factor)
            except (ConfigError, ValueError):
                return value
    return definition.default


def topic_value(broker: Any, topic: Any, name: str) -> str | None:
    """A topic's effective config value (override, else broker synonyms, else Kafka's default)."""
    override = topic.configs.get(name) if topic is not None else None
    if override is not None:
        definition = TOPIC_CONFIGS.get(name)
        return normalise(definition, override) if definition is not None else override
    return topic_default(broker, name)


def _entry(name: str, value: str | None, source: int, sensitive: bool, read_only: bool, config_type: int, synonyms: list[dict[str, Any]]) -> dict[str, Any]:
    return dict(
        name=name,
        value=None if sensitive else value,
        read_only=read_only,
        config_source=source,
        is_sensitive=sensitive,
        is_default=source == DEFAULT_CONFIG,
        synonyms=synonyms,
        config_type=config_type,
        documentation=None,
    )


def _synonym_list(broker: Any, name: str, names: Iterable[str], sensitive: bool, static: Mapping[str, str], only: int | None = None) -> list[dict[str, Any]]:
    # ConfigHelper.configSynonyms: every layer holding one of the names, in
    # precedence order, then drop everything before the described name
    found = []
    for source, layer in _layers(broker, static):
        if only is not None and source != only:
            continue
        for synonym in names:
            if synonym in layer:
                found.append(dict(name=synonym, value=None if sensitive else layer[synonym], source=source))
    while found and found[0]["name"] != name:
        found.pop(0)
    return found


def describe_topic_configs(broker: Any, topic: Any, keys: Iterable[str] | None, include_synonyms: bool, static: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """ConfigHelper.createTopicConfigEntry for every topic config (or ``keys``)."""
    static = static if static is not None else static_configs(broker)
    wanted = set(keys) if keys else None
    entries = []
    for name, definition in sorted(TOPIC_CONFIGS.items()):
        if wanted is not None and name not in wanted:
            continue
        synonyms: list[dict[str, Any]] = []
        server = TOPIC_SYNONYMS.get(name)
        if server:
            first = server[0][0]
            synonyms = _synonym_list(broker, first, broker_synonyms(first), definition.sensitive, static)
        override = topic.configs.get(name)
        if override is not None:
            value = normalise(definition, override)
            synonyms.insert(0, dict(name=name, value=value, source=DYNAMIC_TOPIC_CONFIG))
        else:
            value = topic_default(broker, name, static)
        source = synonyms[0]["source"] if synonyms else DEFAULT_CONFIG
        entries.append(_entry(name, value, source, definition.sensitive, False, definition.type_id, synonyms if include_synonyms else []))
    return entries


def effective_topic_configs(broker: Any, overrides: Mapping[str, str]) -> list[dict[str, Any]]:
    """CreateTopics v5+: every topic config with its value and source (KafkaConfigSchema.resolveEffectiveTopicConfig)."""
    static = static_configs(broker)
    result = []
    for name, definition in sorted(TOPIC_CONFIGS.items()):
        if name in overrides:
            value, source = overrides[name], DYNAMIC_TOPIC_CONFIG
        else:
            value, source = definition.default, DEFAULT_CONFIG
            for synonym, factor in TOPIC_SYNONYMS.get(name, ()):
                found = next(((src, layer[synonym]) for src, layer in _layers(broker, static)[:3] if synonym in layer), None)
                if found is not None:
                    source, raw = found
                    value = raw if factor == 1 else str(int(raw.strip()) * factor)
                    break
        result.append(dict(name=name, value=None if definition.sensitive else value, read_only=False, config_source=source, is_sensitive=definition.sensitive))
    return result


# ------------------------------------------------------------- brokers
def describe_broker_configs(broker: Any, keys: Iterable[str] | None, include_synonyms: bool, *, per_broker: bool, static: Mapping[str, str]) -> list[dict[str, Any]]:
    """ConfigHelper.createBrokerConfigEntry: every broker config for resource "0",
    only the cluster-level dynamic defaults for resource ""."""
    wanted = set(keys) if keys else None
    if per_broker:
        names = set(BROKER_CONFIGS) | set(static) | set(getattr(broker, "kafka_dynamic_broker_configs", {})) | set(getattr(broker, "kafka_dynamic_default_configs", {}))
    else:
        names = set(getattr(broker, "kafka_dynamic_default_configs", {}))
    entries = []
    for name in sorted(names):
        if wanted is not None and name not in wanted:
            continue
        definition = BROKER_CONFIGS.get(name)
        # KafkaConfig.maybeSensitive: unknown types are treated as sensitive
        sensitive = definition is None or definition.sensitive
        synonyms = _synonym_list(broker, name, broker_synonyms(name), sensitive, static, None if per_broker else DYNAMIC_DEFAULT_BROKER_CONFIG)
        if per_broker:
            value = next((s["value"] for s in synonyms if s["name"] == name), None)
            if value is None and not sensitive:
                value = broker_value(broker, name, static)
        else:
            value = getattr(broker, "kafka_dynamic_default_configs", {}).get(name)
        source = synonyms[0]["source"] if synonyms else DEFAULT_CONFIG
        read_only = definition is None or not definition.dynamic
        config_type = definition.type_id if definition is not None else 0
        entries.append(_entry(name, value, source, sensitive, read_only, config_type, synonyms if include_synonyms else []))
    return entries


def validate_broker_change(configs: Mapping[str, str | None], *, per_broker: bool) -> None:
    """DynamicBrokerConfig.validate: only dynamic configs, values of the right type.

    Raises:
        ConfigError: INVALID_REQUEST (the broker's dynamic-config errors are
            wrapped in InvalidRequestException, KAFKA-13609).
    """
    static_only = sorted(name for name in configs if name in BROKER_CONFIGS and not BROKER_CONFIGS[name].dynamic)
    if static_only:
        raise ConfigError(f"Cannot update these configs dynamically: Set({', '.join(static_only)})", 42)
    if not per_broker:
        per_broker_only = sorted(name for name in configs if name in PER_BROKER_CONFIGS)
        if per_broker_only:
            raise ConfigError(f"Cannot update these configs at default cluster level, broker id must be specified: Set({', '.join(per_broker_only)})", 42)
    for name, value in configs.items():
        definition = BROKER_CONFIGS.get(name)
        if definition is not None and value is not None:
            try:
                parse(definition, value)
            except ConfigError as error:
                raise ConfigError(error.message, 42) from None


def apply_incremental(current: Mapping[str, str], operations: Iterable[tuple[str, int, str | None]], definitions: Mapping[str, ConfigDef]) -> dict[str, str | None]:
    """ConfigurationControlManager.incrementalAlterConfigResource: the new overrides.

    Args:
        current: the resource's overrides now.
        operations: (name, operation, value) with SET/DELETE/APPEND/SUBTRACT.
        definitions: the config definitions of the resource type.

    Returns:
        The overrides after the operations (deleted names absent).

    Raises:
        ConfigError: INVALID_CONFIG for APPEND/SUBTRACT on a non-LIST config
            or an unknown operation (INVALID_REQUEST).
    """
    result: dict[str, str | None] = dict(current)
    for name, operation, value in operations:
        if operation == SET:
            result[name] = value
        elif operation == DELETE:
            result.pop(name, None)
        elif operation in (APPEND, SUBTRACT):
            definition = definitions.get(name)
            if definition is None or definition.type != "LIST":
                raise ConfigError(f"Can't {OPERATION_NAMES[operation]} to key {name} because its type is not LIST.")
            existing = result.get(name)
            if existing is None:
                existing = definition.default
            parts = [p for p in (existing or "").split(",") if p]
            for item in (value or "").split(","):
                if operation == APPEND and item not in parts:
                    parts.append(item)
                elif operation == SUBTRACT and item in parts:
                    parts.remove(item)
            result[name] = ",".join(parts)
        else:
            raise ConfigError(f"Unknown operations type {operation}", 42)
    return result
