"""The broker: users, virtual hosts and the connections that use them."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from .acls import Acls
from .faults import Faults
from .groups import GroupCoordinator
from .producers import ProducerIds
from .timers import Scheduler
from .topics import Topics
from .vhost import VHost


#: Static Kafka broker configs wiregate starts with, the ones test setups of
#: Kafka set (Kafka's own test fixtures, testcontainers' Kafka module):
#: groups form at once instead of after 3 s, and short session timeouts are
#: accepted.  ``wiregate serve --kafka-config KEY=VALUE`` overrides them
#: (``group.initial.rebalance.delay.ms=3000`` and
#: ``group.min.session.timeout.ms=6000`` give Kafka's production defaults).
TEST_BROKER_CONFIGS = {
    "group.initial.rebalance.delay.ms": "0",
    "group.min.session.timeout.ms": "1000",
}


class Broker:
    """All state of one wiregate server, shared by every protocol front end."""

    def __init__(self, scheduler: Scheduler | None = None) -> None:
        #: the clock and deadlines of every time-based feature (TTL, x-expires)
        self.scheduler = scheduler if scheduler is not None else Scheduler()
        #: identifies the cluster to Kafka clients (Metadata, DescribeCluster)
        self.cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        #: broker-level Kafka configs that differ from Kafka's defaults (static: survive reset())
        self.kafka_configs: dict[str, str] = dict(TEST_BROKER_CONFIGS)
        #: RabbitMQ vhost limits applied to every vhost ("max-queues": N); survive reset()
        self.vhost_limits: dict[str, int] = {}
        self._fresh_entities()
        #: user name -> password; RabbitMQ's default user guest/guest
        self.users: dict[str, str] = {"guest": "guest"}
        #: open client connections of every protocol (for listings)
        self.connections: set[Any] = set()
        #: why publishers are blocked (memory alarm, or set by a test); None when not
        self.blocked_reason: str | None = None
        #: fault-injection rules (tests); their listeners survive reset()
        self.faults = Faults()
        #: the data directory (core/persistence.py); None in memory mode
        self.persistence: Any = None

    def _fresh_entities(self) -> None:
        self.vhosts: dict[str, VHost] = {"/": VHost("/", self.scheduler, self.vhost_limits)}
        #: Kafka configs set at run time for this broker (resource "1") and as cluster defaults (resource "")
        self.kafka_dynamic_broker_configs: dict[str, str] = {}
        self.kafka_dynamic_default_configs: dict[str, str] = {}
        #: Kafka ACL bindings (CreateAcls/DescribeAcls/DeleteAcls)
        self.kafka_acls = Acls()
        #: Kafka client quotas: entity ((type, name or None), ...) -> {quota key: value}
        self.kafka_client_quotas: dict[tuple[tuple[str, str | None], ...], dict[str, float]] = {}
        #: Kafka consumer groups and their committed offsets (reads group.* configs)
        self.groups = GroupCoordinator(self.scheduler, self.kafka_configs)
        #: Kafka topics (one namespace for the whole broker)
        self.topics = Topics()
        #: allocates idempotent producer ids (InitProducerId)
        self.producer_ids = ProducerIds()

    def authenticate(self, username: str, password: str) -> bool:
        return self.users.get(username) == password

    def block(self, reason: str) -> None:
        """Raise a resource alarm: every connection is told to stop publishing.

        Connections are notified through their ``resource_alarm(reason)``
        method (AMQP sends connection.blocked to clients that support it).
        """
        if self.blocked_reason is not None:
            return
        self.blocked_reason = reason
        for connection in list(self.connections):
            connection.resource_alarm(reason)

    def unblock(self) -> None:
        """Clear the resource alarm (AMQP: connection.unblocked)."""
        if self.blocked_reason is None:
            return
        self.blocked_reason = None
        for connection in list(self.connections):
            connection.resource_alarm(None)

    def add_vhost(self, name: str) -> VHost:
        vhost = self.vhosts.get(name)
        if vhost is None:
            vhost = self.vhosts[name] = VHost(name, self.scheduler, self.vhost_limits)
            vhost.persistence = self.persistence
        return vhost

    def attach_persistence(self, persistence: Any) -> None:
        """Report every durable change to ``persistence`` from now on (see core/persistence.py).

        Called after recovery has replayed the data directory into this
        broker, so replaying is not journaled again.
        """
        self.persistence = persistence
        for vhost in self.vhosts.values():
            vhost.persistence = persistence
        self.topics.persistence = persistence
        self.groups.persistence = persistence
        self.producer_ids.persistence = persistence

    def reset(self) -> None:
        """Forget every entity — vhost contents, topics, groups, offsets, ACLs,
        quotas, dynamic configs, fault rules — for the next test.  Users and
        static configs stay.

        Open connections that are bound to a vhost (AMQP) are told to go,
        through their ``broker_reset()``, as RabbitMQ closes the connections
        of a deleted vhost: their channels, consumers and unacked deliveries
        belong to the state that is gone.  Kafka connections hold no such
        state and stay open."""
        self._fresh_entities()
        self.faults.clear()
        if self.persistence is not None:
            self.persistence.reset()
            self.attach_persistence(self.persistence)
        for connection in list(self.connections):
            connection.broker_reset()
