"""Kafka consumer groups: the classic group protocol's coordinator, and committed offsets.

This is Kafka 4.0's classic group coordinator (``GroupMetadataManager`` and
``ClassicGroup`` in ``group-coordinator``) on the core's injected clock.
The group states and the transitions between them are data
(:data:`TRANSITIONS`); every state change goes through
:meth:`Group.transition_to`, which checks it against that table, as
Kafka's ``ClassicGroupState.validPreviousStates`` does.

Requests that must wait (JoinGroup until every known member rejoined or the
rebalance timeout passed, a follower's SyncGroup until the leader's
assignment arrives) pass a ``reply`` callable; the coordinator calls it
exactly once, either before the call returns or later, from another
member's request or from a :class:`~wiregate.core.timers.Scheduler` timer.
The protocol layer turns that into a deferred response, so a parked
request never blocks anything else.

Timers (Kafka's names): a heartbeat deadline per member (session timeout;
five minutes for a new member parked in its first JoinGroup), a join
deadline per group (rebalance timeout, or the initial rebalance delay), a
sync deadline per group (rebalance timeout).

Broker configs read from ``configs`` (Kafka's names and defaults):
``group.initial.rebalance.delay.ms`` (Kafka's 3000 here; applied only when
an empty group starts its first rebalance — the Broker starts with 0, as
test setups of Kafka do, see ``broker.TEST_BROKER_CONFIGS``),
``group.min.session.timeout.ms`` (Kafka's 6000 here; the Broker starts with 1000), ``group.max.session.timeout.ms``
(1800000), ``group.max.size`` (unbounded) and ``offset.metadata.max.bytes``
(4096).

Differences from Kafka, all unobservable by a well-behaved client:
- Nothing is persisted; Kafka's "write the group metadata record, then
  answer" completes at once.
- An Empty group stays listed until DeleteGroups; Kafka drops an Empty group
  without offsets in its periodic cleanup (every 10 minutes by default),
  and expires offsets after ``offsets.retention.minutes``.
- A member removed while its SyncGroup is parked gets UNKNOWN_MEMBER_ID for
  it; Kafka leaves that request unanswered until the client times out.
"""

from __future__ import annotations

import dataclasses
import enum
import struct
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from .timers import Scheduler, Timer


class GroupState(enum.Enum):
    """A classic group's state; the value is Kafka's name for it (DescribeGroups, ListGroups)."""

    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


_S = GroupState

#: target state -> the states it may be entered from (Kafka's ClassicGroupState)
TRANSITIONS: dict[GroupState, frozenset[GroupState]] = {
    _S.EMPTY: frozenset({_S.PREPARING_REBALANCE}),
    _S.PREPARING_REBALANCE: frozenset({_S.STABLE, _S.COMPLETING_REBALANCE, _S.EMPTY}),
    _S.COMPLETING_REBALANCE: frozenset({_S.PREPARING_REBALANCE}),
    _S.STABLE: frozenset({_S.COMPLETING_REBALANCE}),
    _S.DEAD: frozenset({_S.STABLE, _S.PREPARING_REBALANCE, _S.COMPLETING_REBALANCE, _S.EMPTY, _S.DEAD}),
}


class GroupError(enum.Enum):
    """Outcomes of group operations, named as Kafka's ``Errors``; the protocol layer maps them to codes."""

    NONE = enum.auto()
    COORDINATOR_NOT_AVAILABLE = enum.auto()
    ILLEGAL_GENERATION = enum.auto()
    INCONSISTENT_GROUP_PROTOCOL = enum.auto()
    INVALID_GROUP_ID = enum.auto()
    UNKNOWN_MEMBER_ID = enum.auto()
    INVALID_SESSION_TIMEOUT = enum.auto()
    REBALANCE_IN_PROGRESS = enum.auto()
    NON_EMPTY_GROUP = enum.auto()
    GROUP_ID_NOT_FOUND = enum.auto()
    MEMBER_ID_REQUIRED = enum.auto()
    GROUP_MAX_SIZE_REACHED = enum.auto()
    FENCED_INSTANCE_ID = enum.auto()
    GROUP_SUBSCRIBED_TO_TOPIC = enum.auto()
    OFFSET_METADATA_TOO_LARGE = enum.auto()


_E = GroupError

#: Heartbeat's answer per state, once member and generation are valid
HEARTBEAT_BY_STATE: dict[GroupState, GroupError] = {
    _S.EMPTY: _E.UNKNOWN_MEMBER_ID,
    _S.PREPARING_REBALANCE: _E.REBALANCE_IN_PROGRESS,
    _S.COMPLETING_REBALANCE: _E.NONE,
    _S.STABLE: _E.NONE,
}

#: DeleteGroups' answer per state (Kafka's ClassicGroup.validateDeleteGroup)
DELETE_BY_STATE: dict[GroupState, GroupError] = {
    _S.EMPTY: _E.NONE,
    _S.PREPARING_REBALANCE: _E.NON_EMPTY_GROUP,
    _S.COMPLETING_REBALANCE: _E.NON_EMPTY_GROUP,
    _S.STABLE: _E.NON_EMPTY_GROUP,
    _S.DEAD: _E.GROUP_ID_NOT_FOUND,
}

#: Kafka's classicGroupNewMemberJoinTimeoutMs: how long a new member's first JoinGroup may stay parked
NEW_MEMBER_JOIN_TIMEOUT_MS = 5 * 60 * 1000

CONSUMER_PROTOCOL_TYPE = "consumer"

CONFIG_DEFAULTS: dict[str, str] = {
    "group.initial.rebalance.delay.ms": "3000",
    "group.min.session.timeout.ms": "6000",
    "group.max.session.timeout.ms": "1800000",
    "group.max.size": "2147483647",
    "offset.metadata.max.bytes": "4096",
}


# ------------------------------------------------------------------ values
@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class JoinRequest:
    """A JoinGroup request in protocol-neutral form.

    ``protocols`` is the member's (name, metadata) list in its order of
    preference.  ``require_known_member_id`` is true from JoinGroup v4 on
    (KIP-394), ``supports_skip_assignment`` from v9 on (KIP-814).
    """

    group_id: str
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: tuple[tuple[str, bytes], ...]
    require_known_member_id: bool = True
    supports_skip_assignment: bool = True


@dataclasses.dataclass(frozen=True, slots=True)
class JoinedMember:
    """One member as the leader sees it in its JoinGroup response."""

    member_id: str
    group_instance_id: str | None
    metadata: bytes


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class JoinResult:
    error: GroupError = GroupError.NONE
    member_id: str = ""
    generation_id: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader: str = ""
    skip_assignment: bool = False
    members: tuple[JoinedMember, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SyncResult:
    error: GroupError = GroupError.NONE
    protocol_type: str | None = None
    protocol_name: str | None = None
    assignment: bytes = b""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LeaveResult:
    member_id: str
    group_instance_id: str | None
    error: GroupError = GroupError.NONE


@dataclasses.dataclass(frozen=True, slots=True)
class CommittedOffset:
    """A committed offset with what came with it (Kafka's OffsetAndMetadata)."""

    offset: int
    leader_epoch: int
    metadata: str
    commit_timestamp_ms: int


@dataclasses.dataclass(frozen=True, slots=True)
class OffsetCommit:
    """One partition of an OffsetCommit request."""

    topic: str
    partition: int
    offset: int
    leader_epoch: int = -1
    metadata: str | None = None


JoinReply = Callable[[JoinResult], None]
SyncReply = Callable[[SyncResult], None]


# ----------------------------------------------------------------- members
class Member:
    """A group member (Kafka's ClassicGroupMember)."""

    __slots__ = (
        "member_id", "group_instance_id", "client_id", "client_host", "rebalance_timeout_ms",
        "session_timeout_ms", "protocol_type", "protocols", "assignment", "join_reply", "sync_reply", "is_new",
    )

    def __init__(self, member_id: str, request: JoinRequest) -> None:
        self.member_id = member_id
        self.group_instance_id = request.group_instance_id
        self.client_id = request.client_id
        self.client_host = request.client_host
        self.rebalance_timeout_ms = request.rebalance_timeout_ms
        self.session_timeout_ms = request.session_timeout_ms
        self.protocol_type = request.protocol_type
        self.protocols: tuple[tuple[str, bytes], ...] = request.protocols
        self.assignment = b""
        #: the parked JoinGroup's reply, while the member awaits one
        self.join_reply: JoinReply | None = None
        #: the parked SyncGroup's reply, while the member awaits one
        self.sync_reply: SyncReply | None = None
        #: joined but not yet through a completed join phase
        self.is_new = False

    @property
    def awaiting_join(self) -> bool:
        return self.join_reply is not None

    @property
    def awaiting_sync(self) -> bool:
        return self.sync_reply is not None

    def has_satisfied_heartbeat(self) -> bool:
        """Members parked in a rebalance count as alive; new members can still expire."""
        if self.is_new:
            return False
        return self.awaiting_join or self.awaiting_sync

    def metadata(self, protocol: str | None) -> bytes:
        for name, metadata in self.protocols:
            if name == protocol:
                return metadata
        return b""

    def protocol_names(self) -> list[str]:
        return [name for name, _ in self.protocols]

    def vote(self, candidates: set[str]) -> str:
        """The member's most preferred protocol among ``candidates``."""
        for name, _ in self.protocols:
            if name in candidates:
                return name
        raise ValueError("member supports none of the candidate protocols")

    def complete_join(self, result: JoinResult) -> bool:
        reply, self.join_reply = self.join_reply, None
        if reply is None:
            return False
        reply(result)
        return True

    def complete_sync(self, result: SyncResult) -> bool:
        reply, self.sync_reply = self.sync_reply, None
        if reply is None:
            return False
        reply(result)
        return True


# ------------------------------------------------------------------ groups
class Group:
    """One classic group: membership, generation, protocol and committed offsets."""

    def __init__(self, group_id: str, now_ms: int) -> None:
        self.group_id = group_id
        self.state = GroupState.EMPTY
        self.previous_state = GroupState.DEAD
        self.state_timestamp_ms = now_ms
        self.generation_id = 0
        self.protocol_type: str | None = None
        self.protocol_name: str | None = None
        self.leader_id: str | None = None
        #: member id -> member, in join order
        self.members: dict[str, Member] = {}
        #: group.instance.id -> member id
        self.static_members: dict[str, str] = {}
        #: ids handed out with MEMBER_ID_REQUIRED, not yet joined with
        self.pending_members: set[str] = set()
        #: members that got their JoinGroup response but have not sent SyncGroup
        self.pending_sync: set[str] = set()
        #: a member joined during the initial rebalance delay (which then extends)
        self.new_member_added = False
        #: topics the members subscribe to (consumer protocol); None when unknown
        self.subscribed_topics: set[str] | None = None
        #: (topic, partition) -> committed offset
        self.offsets: dict[tuple[str, int], CommittedOffset] = {}

    def __repr__(self) -> str:
        return f"<Group {self.group_id!r} {self.state.value} generation {self.generation_id} members {list(self.members)}>"

    # ---------------------------------------------------------- state
    def transition_to(self, target: GroupState, now_ms: int) -> None:
        if self.state not in TRANSITIONS[target]:
            raise AssertionError(f"group {self.group_id}: no transition {self.state.value} -> {target.value}")
        self.previous_state = self.state
        self.state = target
        self.state_timestamp_ms = now_ms

    def can_rebalance(self) -> bool:
        return self.state in TRANSITIONS[GroupState.PREPARING_REBALANCE]

    @property
    def is_empty(self) -> bool:
        return self.state is GroupState.EMPTY

    # -------------------------------------------------------- members
    def is_leader(self, member_id: str) -> bool:
        return self.leader_id == member_id

    def add(self, member: Member, reply: JoinReply | None) -> None:
        if member.group_instance_id is not None:
            self.static_members[member.group_instance_id] = member.member_id
        if not self.members:
            self.protocol_type = member.protocol_type
        if self.leader_id is None:
            self.leader_id = member.member_id
        self.members[member.member_id] = member
        member.join_reply = reply
        self.pending_members.discard(member.member_id)

    def remove(self, member_id: str) -> Member | None:
        member = self.members.pop(member_id, None)
        if member is not None and member.group_instance_id is not None:
            self.static_members.pop(member.group_instance_id, None)
        if self.is_leader(member_id):
            self.leader_id = next(iter(self.members), None)
        self.pending_members.discard(member_id)
        self.pending_sync.discard(member_id)
        return member

    def replace_static_member(self, instance_id: str, old_member_id: str, new_member_id: str) -> Member:
        """A static member rejoined without its member id: fence the old id, keep its place."""
        member = self.members.pop(old_member_id)
        member.complete_join(JoinResult(error=GroupError.FENCED_INSTANCE_ID, member_id=old_member_id))
        member.complete_sync(SyncResult(error=GroupError.FENCED_INSTANCE_ID))
        member.member_id = new_member_id
        self.members[new_member_id] = member
        if self.is_leader(old_member_id):
            self.leader_id = new_member_id
        self.static_members[instance_id] = new_member_id
        self.pending_sync.discard(old_member_id)
        return member

    def validate_member(self, member_id: str, instance_id: str | None) -> GroupError:
        """Kafka's ClassicGroup.validateMember."""
        if instance_id is not None:
            existing = self.static_members.get(instance_id)
            if existing is None:
                return GroupError.UNKNOWN_MEMBER_ID
            if existing != member_id:
                return GroupError.FENCED_INSTANCE_ID
        if member_id not in self.members:
            return GroupError.UNKNOWN_MEMBER_ID
        return GroupError.NONE

    def has_all_members_joined(self) -> bool:
        return all(m.awaiting_join for m in self.members.values()) and not self.pending_members

    def rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def _candidate_protocols(self) -> set[str]:
        members = list(self.members.values())
        if not members:
            return set()
        common = set(members[0].protocol_names())
        for member in members[1:]:
            common &= set(member.protocol_names())
        return common

    def supports_protocols(self, protocol_type: str, names: list[str]) -> bool:
        if self.is_empty:
            return bool(protocol_type) and bool(names)
        if self.protocol_type != protocol_type:
            return False
        candidates = self._candidate_protocols()
        return any(name in candidates for name in names)

    def select_protocol(self) -> str:
        """The protocol every member supports that most members prefer (Kafka's selectProtocol).

        Kafka breaks a tie by hash order; here the earliest member's vote wins it.
        """
        candidates = self._candidate_protocols()
        votes: dict[str, int] = {}
        for member in self.members.values():
            choice = member.vote(candidates)
            votes[choice] = votes.get(choice, 0) + 1
        best = max(votes.values())
        return next(name for name, count in votes.items() if count == best)

    def joined_members(self) -> tuple[JoinedMember, ...]:
        return tuple(
            JoinedMember(m.member_id, m.group_instance_id, m.metadata(self.protocol_name)) for m in self.members.values()
        )

    def compute_subscribed_topics(self) -> set[str] | None:
        """Topics of the members' consumer-protocol subscriptions (Kafka's computeSubscribedTopics)."""
        if self.protocol_type != CONSUMER_PROTOCOL_TYPE:
            return None
        if not self.members:
            return set()
        if self.protocol_name is None:
            return None
        topics: set[str] = set()
        for member in self.members.values():
            parsed = consumer_subscription_topics(member.metadata(self.protocol_name))
            if parsed is None:
                return None
            topics |= parsed
        return topics

    def is_subscribed_to(self, topic: str) -> bool:
        if self.subscribed_topics is not None:
            return topic in self.subscribed_topics
        return self.protocol_type == CONSUMER_PROTOCOL_TYPE


def consumer_subscription_topics(metadata: bytes) -> set[str] | None:
    """The topics of a ConsumerProtocolSubscription, read as its v0 prefix; None if malformed.

    Every version of the consumer protocol starts with v0's fields (int16
    version, then an array of topic names), which is how Kafka's coordinator
    reads it without knowing later versions.
    """
    try:
        (count,) = struct.unpack_from(">i", metadata, 2)
        pos = 6
        topics = set()
        for _ in range(count):
            (length,) = struct.unpack_from(">h", metadata, pos)
            pos += 2
            if length < 0 or pos + length > len(metadata):
                return None
            topics.add(metadata[pos : pos + length].decode())
            pos += length
        return topics
    except (struct.error, UnicodeDecodeError):
        return None


# ------------------------------------------------------------- coordinator
def group_metadata(group: Group) -> dict[str, Any]:
    """What survives a restart of a group besides its offsets (Kafka's GroupMetadataValue)."""
    return {
        "group_id": group.group_id,
        "generation_id": group.generation_id,
        "protocol_type": group.protocol_type,
        "protocol_name": group.protocol_name,
        "leader_id": group.leader_id,
        "members": [
            {
                "member_id": member.member_id,
                "group_instance_id": member.group_instance_id,
                "client_id": member.client_id,
                "client_host": member.client_host,
                "session_timeout_ms": member.session_timeout_ms,
                "rebalance_timeout_ms": member.rebalance_timeout_ms,
                "protocol_type": member.protocol_type,
                "protocols": list(member.protocols),
                "assignment": member.assignment,
            }
            for member in group.members.values()
        ] if group.state is GroupState.STABLE else [],
    }


class GroupCoordinator:
    """Every classic group of the broker and their committed offsets.

    Args:
        scheduler: the core's clock and deadlines.
        configs: broker configs (``Broker.kafka_configs``), read on use, so
            a test can change them on a running broker.
    """

    def __init__(self, scheduler: Scheduler, configs: Mapping[str, str] | None = None) -> None:
        self.scheduler = scheduler
        #: the data directory's journal (core/persistence.py); None in memory mode
        self.persistence: Any = None
        self.configs: Mapping[str, str] = configs if configs is not None else {}
        self.groups: dict[str, Group] = {}
        self._heartbeats: dict[tuple[str, str], Timer] = {}
        self._join_timers: dict[str, Timer] = {}
        self._sync_timers: dict[str, Timer] = {}

    # ---------------------------------------------------------- helpers
    def config_int(self, name: str) -> int:
        return int(self.configs.get(name, CONFIG_DEFAULTS[name]))

    def now_ms(self) -> int:
        return int(self.scheduler.now() * 1000)

    def wall_ms(self) -> int:
        return int(self.scheduler.wall() * 1000)

    def get(self, group_id: str) -> Group | None:
        return self.groups.get(group_id)

    def _get_or_create(self, group_id: str) -> Group:
        group = self.groups.get(group_id)
        if group is None:
            group = self.groups[group_id] = Group(group_id, self.wall_ms())
        return group

    def _transition(self, group: Group, target: GroupState) -> None:
        group.transition_to(target, self.wall_ms())
        if self.persistence is not None and target in (GroupState.STABLE, GroupState.EMPTY):
            # Kafka writes a group's metadata when a rebalance completes and
            # when it empties; after a restart members carry on with their
            # generation instead of rejoining.
            self.persistence.journal(("groups", "restore_group", (group_metadata(group),)))

    def restore_group(self, metadata: dict[str, Any]) -> None:
        """Put back a group's generation, protocol and members (journal replay).

        Members get a fresh session timeout from now: those that do not come
        back are evicted, as Kafka evicts them after loading the group.
        """
        group = self._get_or_create(metadata["group_id"])
        for member_id in list(group.members):
            self._cancel_heartbeat(group, member_id)
        group.members.clear()
        group.static_members.clear()
        group.generation_id = metadata["generation_id"]
        group.protocol_type = metadata["protocol_type"]
        group.protocol_name = metadata["protocol_name"]
        group.leader_id = metadata["leader_id"]
        for saved in metadata["members"]:
            request = JoinRequest(
                group_id=group.group_id,
                member_id=saved["member_id"],
                group_instance_id=saved["group_instance_id"],
                client_id=saved["client_id"],
                client_host=saved["client_host"],
                session_timeout_ms=saved["session_timeout_ms"],
                rebalance_timeout_ms=saved["rebalance_timeout_ms"],
                protocol_type=saved["protocol_type"],
                protocols=tuple(saved["protocols"]),
            )
            member = Member(saved["member_id"], request)
            member.assignment = saved["assignment"]
            group.members[member.member_id] = member
            if member.group_instance_id is not None:
                group.static_members[member.group_instance_id] = member.member_id
            self._schedule_heartbeat(group, member.member_id, member.session_timeout_ms)
        group.subscribed_topics = group.compute_subscribed_topics() if group.members else None
        group.state = GroupState.STABLE if group.members else GroupState.EMPTY

    def _after(self, delay_ms: int, callback: Callable[[], None]) -> Timer:
        return self.scheduler.call_at(self.scheduler.now() + delay_ms / 1000, callback)

    def _schedule_heartbeat(self, group: Group, member_id: str, timeout_ms: int) -> None:
        key = (group.group_id, member_id)
        old = self._heartbeats.pop(key, None)
        if old is not None:
            old.cancel()
        self._heartbeats[key] = self._after(timeout_ms, lambda: self._expire_heartbeat(key[0], key[1]))

    def _reschedule_heartbeat(self, group: Group, member: Member) -> None:
        self._schedule_heartbeat(group, member.member_id, member.session_timeout_ms)

    def _cancel_heartbeat(self, group: Group, member_id: str) -> None:
        timer = self._heartbeats.pop((group.group_id, member_id), None)
        if timer is not None:
            timer.cancel()

    def _schedule_join(self, group: Group, delay_ms: int, callback: Callable[[], None]) -> None:
        self._cancel_join(group)
        self._join_timers[group.group_id] = self._after(delay_ms, callback)

    def _cancel_join(self, group: Group) -> None:
        timer = self._join_timers.pop(group.group_id, None)
        if timer is not None:
            timer.cancel()

    def _cancel_sync(self, group: Group) -> None:
        timer = self._sync_timers.pop(group.group_id, None)
        if timer is not None:
            timer.cancel()

    def _new_member_id(self, prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4()}"

    # ------------------------------------------------------------- join
    def join(self, request: JoinRequest, reply: JoinReply) -> None:
        """JoinGroup: answer through ``reply``, now or when the join phase completes."""
        if not request.group_id:
            reply(JoinResult(error=GroupError.INVALID_GROUP_ID, member_id=request.member_id))
            return
        if not (
            self.config_int("group.min.session.timeout.ms")
            <= request.session_timeout_ms
            <= self.config_int("group.max.session.timeout.ms")
        ):
            reply(JoinResult(error=GroupError.INVALID_SESSION_TIMEOUT, member_id=request.member_id))
            return
        unknown_member = request.member_id == ""
        group = self.groups.get(request.group_id)
        if group is None:
            if not unknown_member:
                reply(JoinResult(error=GroupError.UNKNOWN_MEMBER_ID, member_id=request.member_id))
                return
            group = self._get_or_create(request.group_id)
        if not self._accept_joining_member(group, request.member_id):
            group.remove(request.member_id)
            reply(JoinResult(error=GroupError.GROUP_MAX_SIZE_REACHED, member_id=""))
        elif unknown_member:
            self._join_new_member(group, request, reply)
        else:
            self._join_existing_member(group, request, reply)

    def _accept_joining_member(self, group: Group, member_id: str) -> bool:
        max_size = self.config_int("group.max.size")
        if group.state in (GroupState.EMPTY, GroupState.DEAD):
            return True
        if group.state is GroupState.PREPARING_REBALANCE:
            member = group.members.get(member_id)
            awaiting = sum(1 for m in group.members.values() if m.awaiting_join)
            return (member is not None and member.awaiting_join) or awaiting < max_size
        return member_id in group.members or len(group.members) < max_size

    def _join_new_member(self, group: Group, request: JoinRequest, reply: JoinReply) -> None:
        names = [name for name, _ in request.protocols]
        if group.state is GroupState.DEAD:
            reply(JoinResult(error=GroupError.COORDINATOR_NOT_AVAILABLE, member_id=""))
            return
        if not group.supports_protocols(request.protocol_type, names):
            reply(JoinResult(error=GroupError.INCONSISTENT_GROUP_PROTOCOL, member_id=""))
            return
        instance_id = request.group_instance_id
        new_member_id = self._new_member_id(instance_id if instance_id is not None else request.client_id)
        if instance_id is not None:
            existing = group.static_members.get(instance_id)
            if existing is not None:
                self._update_static_member(group, request, existing, new_member_id, reply)
            else:
                self._add_member(group, request, new_member_id, reply)
        elif request.require_known_member_id:
            # KIP-394: hand out the id and expect the member back with it
            group.pending_members.add(new_member_id)
            self._schedule_heartbeat(group, new_member_id, request.session_timeout_ms)
            reply(JoinResult(error=GroupError.MEMBER_ID_REQUIRED, member_id=new_member_id))
        else:
            self._add_member(group, request, new_member_id, reply)

    def _join_existing_member(self, group: Group, request: JoinRequest, reply: JoinReply) -> None:
        member_id = request.member_id
        names = [name for name, _ in request.protocols]
        if group.state is GroupState.DEAD:
            reply(JoinResult(error=GroupError.COORDINATOR_NOT_AVAILABLE, member_id=member_id))
            return
        if not group.supports_protocols(request.protocol_type, names):
            reply(JoinResult(error=GroupError.INCONSISTENT_GROUP_PROTOCOL, member_id=member_id))
            return
        if member_id in group.pending_members:
            self._add_member(group, request, member_id, reply)
            return
        error = group.validate_member(member_id, request.group_instance_id)
        if error is not GroupError.NONE:
            reply(JoinResult(error=error, member_id=member_id))
            return
        member = group.members[member_id]
        state = group.state
        if state is GroupState.PREPARING_REBALANCE:
            self._update_member(group, member, request, reply)
        elif state is GroupState.COMPLETING_REBALANCE:
            if member.protocols == request.protocols:
                # the member lost its JoinGroup response: send this generation's again
                reply(self._join_result(group, member_id, with_members=group.is_leader(member_id)))
            else:
                self._update_member(group, member, request, reply)
        elif state is GroupState.STABLE:
            if group.is_leader(member_id) or member.protocols != request.protocols:
                # a leader rejoining asks for a rebalance (e.g. topic metadata changed)
                self._update_member(group, member, request, reply)
            else:
                reply(self._join_result(group, member_id, with_members=False))
        else:
            reply(JoinResult(error=GroupError.UNKNOWN_MEMBER_ID, member_id=member_id))

    def _join_result(self, group: Group, member_id: str, *, with_members: bool, leader: str | None = None, skip_assignment: bool = False) -> JoinResult:
        return JoinResult(
            member_id=member_id,
            generation_id=group.generation_id,
            protocol_type=group.protocol_type,
            protocol_name=group.protocol_name,
            leader=(leader if leader is not None else group.leader_id) or "",
            skip_assignment=skip_assignment,
            members=group.joined_members() if with_members else (),
        )

    def _add_member(self, group: Group, request: JoinRequest, member_id: str, reply: JoinReply) -> None:
        member = Member(member_id, request)
        member.is_new = True
        if group.state is GroupState.PREPARING_REBALANCE and group.previous_state is GroupState.EMPTY:
            group.new_member_added = True
        group.add(member, reply)
        # A parked first JoinGroup cannot heartbeat; Kafka bounds it by the new-member timeout instead.
        self._schedule_heartbeat(group, member_id, NEW_MEMBER_JOIN_TIMEOUT_MS)
        self._maybe_prepare_rebalance_or_complete_join(group)

    def _update_member(self, group: Group, member: Member, request: JoinRequest, reply: JoinReply | None) -> None:
        member.protocols = request.protocols
        member.rebalance_timeout_ms = request.rebalance_timeout_ms
        member.session_timeout_ms = request.session_timeout_ms
        member.join_reply = reply
        self._maybe_prepare_rebalance_or_complete_join(group)

    def _update_static_member(self, group: Group, request: JoinRequest, old_member_id: str, new_member_id: str, reply: JoinReply) -> None:
        instance_id = request.group_instance_id
        assert instance_id is not None
        current_leader = group.leader_id
        member = group.replace_static_member(instance_id, old_member_id, new_member_id)
        self._cancel_heartbeat(group, old_member_id)
        self._reschedule_heartbeat(group, member)
        member.protocols = request.protocols
        member.rebalance_timeout_ms = request.rebalance_timeout_ms
        member.session_timeout_ms = request.session_timeout_ms
        member.join_reply = reply
        if group.state is GroupState.STABLE:
            if group.protocol_name == group.select_protocol():
                # Nothing changed for the group: no rebalance.  Before v9 the
                # member is told the old leader id, so even a former leader
                # only syncs to get its assignment; v9+ lets a leader skip
                # the assignment (KIP-814).
                if request.supports_skip_assignment:
                    is_leader = group.is_leader(new_member_id)
                    result = self._join_result(group, new_member_id, with_members=is_leader, skip_assignment=is_leader)
                else:
                    result = self._join_result(group, new_member_id, with_members=False, leader=current_leader)
                member.complete_join(result)
            else:
                self._maybe_prepare_rebalance_or_complete_join(group)
        elif group.state is GroupState.COMPLETING_REBALANCE:
            # the leader may already be assigning to the old member id
            self._prepare_rebalance(group)
        else:
            self._maybe_complete_join_phase(group)

    # -------------------------------------------------------- rebalance
    def _maybe_prepare_rebalance_or_complete_join(self, group: Group) -> None:
        if group.can_rebalance():
            self._prepare_rebalance(group)
        else:
            self._maybe_complete_join_phase(group)

    def _maybe_complete_join_phase(self, group: Group) -> None:
        if (
            group.state is GroupState.PREPARING_REBALANCE
            and group.previous_state is not GroupState.EMPTY  # the initial rebalance waits for its delay
            and group.has_all_members_joined()
        ):
            self._complete_join(group)

    def _prepare_rebalance(self, group: Group) -> None:
        if group.state is GroupState.COMPLETING_REBALANCE:
            self._reset_and_propagate_assignment(group, GroupError.REBALANCE_IN_PROGRESS)
        group.pending_sync.clear()
        self._cancel_sync(group)
        initial = group.state is GroupState.EMPTY
        if initial:
            delay = self.config_int("group.initial.rebalance.delay.ms")
            remaining = max(group.rebalance_timeout_ms() - delay, 0)
            self._schedule_join(group, delay, lambda: self._try_complete_initial_rebalance(group.group_id, delay, remaining))
        self._transition(group, GroupState.PREPARING_REBALANCE)
        if initial:
            return
        if group.has_all_members_joined():
            self._complete_join(group)
        else:
            self._schedule_join(group, group.rebalance_timeout_ms(), lambda: self._complete_join_by_id(group.group_id))

    def _try_complete_initial_rebalance(self, group_id: str, delay_ms: int, remaining_ms: int) -> None:
        group = self.groups.get(group_id)
        if group is None:
            return
        if group.new_member_added and remaining_ms != 0:
            # someone joined during the delay: wait once more, within the rebalance timeout
            group.new_member_added = False
            new_delay = min(self.config_int("group.initial.rebalance.delay.ms"), remaining_ms)
            new_remaining = max(remaining_ms - delay_ms, 0)
            self._schedule_join(group, new_delay, lambda: self._try_complete_initial_rebalance(group_id, new_delay, new_remaining))
        else:
            self._complete_join(group)

    def _complete_join_by_id(self, group_id: str) -> None:
        group = self.groups.get(group_id)
        if group is not None:
            self._complete_join(group)

    def _complete_join(self, group: Group) -> None:
        """End the join phase: drop dynamic members that did not rejoin, start the next generation."""
        self._cancel_join(group)
        for member in [m for m in group.members.values() if not m.awaiting_join and m.group_instance_id is None]:
            group.remove(member.member_id)
            self._cancel_heartbeat(group, member.member_id)
            self._orphan_sync(member)
        if group.state is GroupState.DEAD:
            return
        if group.members and not self._elect_joined_leader(group):
            # nobody rejoined: try again after another rebalance timeout, while sessions expire
            self._schedule_join(group, group.rebalance_timeout_ms(), lambda: self._complete_join_by_id(group.group_id))
            return
        self._init_next_generation(group)
        if group.is_empty:
            return
        for member in list(group.members.values()):
            member.complete_join(self._join_result(group, member.member_id, with_members=group.is_leader(member.member_id)))
            self._reschedule_heartbeat(group, member)
            member.is_new = False
            group.pending_sync.add(member.member_id)
        generation = group.generation_id
        self._sync_timers[group.group_id] = self._after(
            group.rebalance_timeout_ms(), lambda: self._expire_pending_sync(group.group_id, generation)
        )

    def _elect_joined_leader(self, group: Group) -> bool:
        """Keep the leader if it rejoined, else the first member that did (Kafka's maybeElectNewJoinedLeader)."""
        if group.leader_id is None:
            return False
        if group.members[group.leader_id].awaiting_join:
            return True
        for member in group.members.values():
            if member.awaiting_join:
                group.leader_id = member.member_id
                return True
        return False

    def _init_next_generation(self, group: Group) -> None:
        group.generation_id += 1
        if group.members:
            group.protocol_name = group.select_protocol()
            group.subscribed_topics = group.compute_subscribed_topics()
            self._transition(group, GroupState.COMPLETING_REBALANCE)
        else:
            group.protocol_name = None
            group.subscribed_topics = group.compute_subscribed_topics()
            self._transition(group, GroupState.EMPTY)
        group.pending_sync.clear()

    def _reset_and_propagate_assignment(self, group: Group, error: GroupError) -> None:
        for member in group.members.values():
            member.assignment = b""
        self._propagate_assignment(group, error)

    def _propagate_assignment(self, group: Group, error: GroupError) -> None:
        ok = error is GroupError.NONE
        for member in list(group.members.values()):
            result = SyncResult(
                error=error,
                protocol_type=group.protocol_type if ok else None,
                protocol_name=group.protocol_name if ok else None,
                assignment=member.assignment,
            )
            if member.complete_sync(result):
                self._reschedule_heartbeat(group, member)

    def _expire_pending_sync(self, group_id: str, generation_id: int) -> None:
        self._sync_timers.pop(group_id, None)
        group = self.groups.get(group_id)
        if group is None or group.generation_id != generation_id:
            return
        if group.state in (GroupState.COMPLETING_REBALANCE, GroupState.STABLE) and group.pending_sync:
            for member_id in list(group.pending_sync):
                member = group.remove(member_id)
                self._cancel_heartbeat(group, member_id)
                if member is not None:
                    self._orphan_sync(member)
            self._prepare_rebalance(group)

    def _orphan_sync(self, member: Member) -> None:
        # Kafka leaves a removed member's parked SyncGroup unanswered; answering
        # it keeps the member's connection from stalling behind it.
        member.complete_sync(SyncResult(error=GroupError.UNKNOWN_MEMBER_ID))

    # ------------------------------------------------------- heartbeats
    def _expire_heartbeat(self, group_id: str, member_id: str) -> None:
        self._heartbeats.pop((group_id, member_id), None)
        group = self.groups.get(group_id)
        if group is None or group.state is GroupState.DEAD:
            return
        if member_id in group.pending_members:
            group.pending_members.discard(member_id)
            if group.state is GroupState.PREPARING_REBALANCE and group.has_all_members_joined():
                self._complete_join(group)
            return
        member = group.members.get(member_id)
        if member is None or member.has_satisfied_heartbeat():
            return
        self._remove_member_and_update_group(group, member)

    def _remove_member_and_update_group(self, group: Group, member: Member) -> None:
        member.complete_join(JoinResult(error=GroupError.UNKNOWN_MEMBER_ID, member_id=""))
        group.remove(member.member_id)
        self._cancel_heartbeat(group, member.member_id)
        self._orphan_sync(member)
        if group.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
            self._maybe_prepare_rebalance_or_complete_join(group)
        elif group.state is GroupState.PREPARING_REBALANCE and group.has_all_members_joined():
            self._complete_join(group)

    # ------------------------------------------------------------- sync
    def sync(
        self,
        group_id: str,
        member_id: str,
        group_instance_id: str | None,
        generation_id: int,
        protocol_type: str | None,
        protocol_name: str | None,
        assignments: Mapping[str, bytes],
        reply: SyncReply,
    ) -> None:
        """SyncGroup: the leader's assignments are handed to every member.

        A member's ``reply`` is called when its assignment is known: at once
        in a Stable group or for the leader, later for a follower that syncs
        before the leader.
        """
        if not group_id:
            reply(SyncResult(error=GroupError.INVALID_GROUP_ID))
            return
        group = self.groups.get(group_id)
        if group is None or group.is_empty:
            reply(SyncResult(error=GroupError.UNKNOWN_MEMBER_ID))
            return
        if group.state is GroupState.DEAD:
            reply(SyncResult(error=GroupError.COORDINATOR_NOT_AVAILABLE))
            return
        error = group.validate_member(member_id, group_instance_id)
        if error is GroupError.NONE:
            if generation_id != group.generation_id:
                error = GroupError.ILLEGAL_GENERATION
            elif _inconsistent(protocol_type, group.protocol_type) or _inconsistent(protocol_name, group.protocol_name):
                error = GroupError.INCONSISTENT_GROUP_PROTOCOL
        if error is not GroupError.NONE:
            reply(SyncResult(error=error))
            return
        member = group.members[member_id]
        if group.state is GroupState.PREPARING_REBALANCE:
            reply(SyncResult(error=GroupError.REBALANCE_IN_PROGRESS))
        elif group.state is GroupState.COMPLETING_REBALANCE:
            member.sync_reply = reply
            self._remove_pending_sync(group, member_id)
            if group.is_leader(member_id):
                for each in group.members.values():
                    each.assignment = assignments.get(each.member_id, b"")
                self._propagate_assignment(group, GroupError.NONE)
                self._transition(group, GroupState.STABLE)
        else:  # Stable: the assignment is known
            self._remove_pending_sync(group, member_id)
            reply(SyncResult(protocol_type=group.protocol_type, protocol_name=group.protocol_name, assignment=member.assignment))

    def _remove_pending_sync(self, group: Group, member_id: str) -> None:
        group.pending_sync.discard(member_id)
        if not group.pending_sync:
            self._cancel_sync(group)

    # -------------------------------------------------------- heartbeat
    def heartbeat(self, group_id: str, member_id: str, group_instance_id: str | None, generation_id: int) -> GroupError:
        """Heartbeat: keeps the session; REBALANCE_IN_PROGRESS tells the member to rejoin."""
        if not group_id:
            return GroupError.INVALID_GROUP_ID
        group = self.groups.get(group_id)
        if group is None:
            return GroupError.UNKNOWN_MEMBER_ID
        if group.state is GroupState.DEAD:
            return GroupError.COORDINATOR_NOT_AVAILABLE
        error = group.validate_member(member_id, group_instance_id)
        if error is not GroupError.NONE:
            return error
        if generation_id != group.generation_id:
            return GroupError.ILLEGAL_GENERATION
        answer = HEARTBEAT_BY_STATE[group.state]
        if answer is not GroupError.UNKNOWN_MEMBER_ID:
            self._reschedule_heartbeat(group, group.members[member_id])
        return answer

    # ------------------------------------------------------------ leave
    def leave(self, group_id: str, members: Iterable[tuple[str, str | None]]) -> tuple[GroupError, list[LeaveResult]]:
        """LeaveGroup for (member id, group instance id) pairs.

        Returns:
            The request-level error and one result per member.  A static
            member can be removed by its instance id alone (empty member id),
            which is how admin clients remove members.
        """
        members = list(members)
        if not group_id:
            return GroupError.INVALID_GROUP_ID, []
        group = self.groups.get(group_id)
        if group is None:
            return GroupError.NONE, [LeaveResult(member_id=m, group_instance_id=i, error=GroupError.UNKNOWN_MEMBER_ID) for m, i in members]
        if group.state is GroupState.DEAD:
            return GroupError.COORDINATOR_NOT_AVAILABLE, []
        results = []
        for member_id, instance_id in members:
            if member_id == "":
                if instance_id is not None and instance_id in group.static_members:
                    self._remove_leaving_member(group, group.static_members[instance_id])
                    results.append(LeaveResult(member_id=member_id, group_instance_id=instance_id))
                else:
                    results.append(LeaveResult(member_id=member_id, group_instance_id=instance_id, error=GroupError.UNKNOWN_MEMBER_ID))
            elif member_id in group.pending_members:
                group.pending_members.discard(member_id)
                self._cancel_heartbeat(group, member_id)
                results.append(LeaveResult(member_id=member_id, group_instance_id=instance_id))
            else:
                error = group.validate_member(member_id, instance_id)
                if error is GroupError.NONE:
                    self._remove_leaving_member(group, member_id)
                results.append(LeaveResult(member_id=member_id, group_instance_id=instance_id, error=error))
        if any(r.error is GroupError.NONE for r in results):
            if group.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
                self._maybe_prepare_rebalance_or_complete_join(group)
            elif group.state is GroupState.PREPARING_REBALANCE:
                self._maybe_complete_join_phase(group)
        return GroupError.NONE, results

    def _remove_leaving_member(self, group: Group, member_id: str) -> None:
        member = group.members[member_id]
        self._cancel_heartbeat(group, member_id)
        member.complete_join(JoinResult(error=GroupError.UNKNOWN_MEMBER_ID, member_id=""))
        group.remove(member_id)
        self._orphan_sync(member)

    # ---------------------------------------------------------- offsets
    def commit_offsets(
        self,
        group_id: str,
        member_id: str,
        group_instance_id: str | None,
        generation_id: int,
        offsets: list[OffsetCommit],
        *,
        missing_group_error: GroupError = GroupError.ILLEGAL_GENERATION,
    ) -> list[GroupError]:
        """OffsetCommit; returns one error per entry of ``offsets``.

        Args:
            missing_group_error: the answer when the group does not exist and
                the commit is from a generation (ILLEGAL_GENERATION before
                OffsetCommit v9, GROUP_ID_NOT_FOUND from v9).  A commit with
                generation -1 creates a simple (member-less) group.
        """
        group = self.groups.get(group_id)
        if group is None:
            if generation_id >= 0:
                return [missing_group_error] * len(offsets)
            group = self._get_or_create(group_id)
        error = self._validate_offset_commit(group, member_id, group_instance_id, generation_id)
        if error is not GroupError.NONE:
            return [error] * len(offsets)
        if group.state in (GroupState.STABLE, GroupState.PREPARING_REBALANCE) and member_id in group.members:
            # a commit keeps a classic member's session alive
            self._reschedule_heartbeat(group, group.members[member_id])
        limit = self.config_int("offset.metadata.max.bytes")
        now = self.wall_ms()
        errors = []
        stored = []
        for commit in offsets:
            if commit.metadata is not None and len(commit.metadata) > limit:
                errors.append(GroupError.OFFSET_METADATA_TOO_LARGE)
                continue
            committed = CommittedOffset(commit.offset, commit.leader_epoch, commit.metadata or "", now)
            group.offsets[(commit.topic, commit.partition)] = committed
            stored.append((commit.topic, commit.partition, committed))
            errors.append(GroupError.NONE)
        if stored and self.persistence is not None:
            self.persistence.journal(("groups", "restore_offsets", (group_id, stored)))
        return errors

    def restore_offsets(self, group_id: str, stored: list[tuple[str, int, CommittedOffset]]) -> None:
        """Put back committed offsets (journal replay); the group is created Empty when missing."""
        group = self._get_or_create(group_id)
        for topic, partition, committed in stored:
            group.offsets[(topic, partition)] = committed

    def forget_offsets(self, group_id: str, keys: list[tuple[str, int]]) -> None:
        """Drop committed offsets (journal replay of OffsetDelete)."""
        group = self.groups.get(group_id)
        if group is not None:
            for key in keys:
                group.offsets.pop(key, None)

    @staticmethod
    def _validate_offset_commit(group: Group, member_id: str, instance_id: str | None, generation_id: int) -> GroupError:
        """Kafka's ClassicGroup.validateOffsetCommit."""
        if group.state is GroupState.DEAD:
            return GroupError.COORDINATOR_NOT_AVAILABLE
        if generation_id < 0 and group.is_empty:
            return GroupError.NONE  # admin clients and consumers without group management
        if generation_id >= 0 or member_id or instance_id is not None:
            error = group.validate_member(member_id, instance_id)
            if error is not GroupError.NONE:
                return error
            if generation_id != group.generation_id:
                return GroupError.ILLEGAL_GENERATION
        elif not group.is_empty:
            return GroupError.UNKNOWN_MEMBER_ID
        if group.state is GroupState.COMPLETING_REBALANCE:
            return GroupError.REBALANCE_IN_PROGRESS
        return GroupError.NONE

    def committed(self, group_id: str) -> dict[tuple[str, int], CommittedOffset]:
        """Every committed offset of a group (empty for an unknown group)."""
        group = self.groups.get(group_id)
        return group.offsets if group is not None else {}

    def delete_offsets(self, group_id: str, topics: list[tuple[str, list[int]]]) -> tuple[GroupError, list[list[GroupError]]]:
        """OffsetDelete.

        Returns:
            A group-level error (GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP when a
            non-consumer group has members) and per topic, per partition,
            NONE or GROUP_SUBSCRIBED_TO_TOPIC.
        """
        if not group_id:
            return GroupError.INVALID_GROUP_ID, []
        group = self.groups.get(group_id)
        if group is None or group.state is GroupState.DEAD:
            return GroupError.GROUP_ID_NOT_FOUND, []
        if not group.is_empty and group.protocol_type != CONSUMER_PROTOCOL_TYPE:
            return GroupError.NON_EMPTY_GROUP, []
        results = []
        for topic, partitions in topics:
            if group.is_subscribed_to(topic):
                results.append([GroupError.GROUP_SUBSCRIBED_TO_TOPIC] * len(partitions))
                continue
            for partition in partitions:
                group.offsets.pop((topic, partition), None)
            if self.persistence is not None:
                self.persistence.journal(("groups", "forget_offsets", (group_id, [(topic, p) for p in partitions])))
            results.append([GroupError.NONE] * len(partitions))
        return GroupError.NONE, results

    # ----------------------------------------------------------- admin
    def list_groups(self, states: Iterable[str] = (), types: Iterable[str] = ()) -> list[Group]:
        """ListGroups: every group, filtered by state names and group types (case-insensitive)."""
        wanted_states = {s.strip().lower() for s in states}
        wanted_types = {t.strip().lower() for t in types}
        if wanted_types and "classic" not in wanted_types:
            return []
        return [g for g in self.groups.values() if not wanted_states or g.state.value.lower() in wanted_states]

    def delete_groups(self, group_ids: Iterable[str]) -> list[tuple[str, GroupError]]:
        """DeleteGroups: an Empty group goes with its offsets; others get NON_EMPTY_GROUP."""
        results = []
        for group_id in group_ids:
            group = self.groups.get(group_id)
            error = GroupError.GROUP_ID_NOT_FOUND if group is None else DELETE_BY_STATE[group.state]
            if error is GroupError.NONE:
                assert group is not None
                self._delete(group)
                if self.persistence is not None:
                    self.persistence.journal(("groups", "delete_groups", ([group_id],)))
            results.append((group_id, error))
        return results

    def _delete(self, group: Group) -> None:
        self._transition(group, GroupState.DEAD)
        self._cancel_join(group)
        self._cancel_sync(group)
        for member_id in list(group.pending_members):
            self._cancel_heartbeat(group, member_id)
        del self.groups[group.group_id]


def _inconsistent(requested: str | None, current: str | None) -> bool:
    return requested is not None and current is not None and requested != current

