"""The classic consumer group coordinator on a fake clock, without sockets.

Join/sync/heartbeat/leave flows, rebalances on join and on leave, the
initial rebalance delay, session-timeout eviction, static membership and
offset commit checks follow Kafka 4.0's GroupMetadataManager and
ClassicGroup; the last tests drive the same code through the sans-IO Kafka
connection (deferred, in-order responses; a parked JoinGroup on one
connection does not hold back another).
"""

from __future__ import annotations

import io
import struct
from typing import Any

import pytest
from kio.schema.errors import ErrorCode
from kio.serial import entity_reader, entity_writer

from wiregate.core import Broker
from wiregate.core.groups import (
    TRANSITIONS,
    GroupCoordinator,
    GroupError,
    GroupState,
    JoinRequest,
    JoinResult,
    OffsetCommit,
    SyncResult,
    consumer_subscription_topics,
)
from wiregate.core.timers import Scheduler
from wiregate.kafka_wire import KafkaConnection
from wiregate.kafka_wire.protocol import build, request_class, response_class

E = GroupError
S = GroupState


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Harness:
    """A coordinator on a fake clock, with helpers that collect replies."""

    def __init__(self, **configs: str) -> None:
        self.clock = Clock()
        self.scheduler = Scheduler(clock=self.clock, wall=self.clock)
        self.configs = {"group.initial.rebalance.delay.ms": "0", **configs}
        self.coordinator = GroupCoordinator(self.scheduler, self.configs)

    def advance(self, seconds: float) -> None:
        self.clock.now += seconds
        self.scheduler.run_due()

    def join(self, group: str = "g", member: str = "", *, instance: str | None = None, protocols=(("range", b"r"),),
             session_ms: int = 10000, rebalance_ms: int = 30000, protocol_type: str = "consumer", client_id: str = "c",
             known_id_required: bool = True, skip_assignment: bool = True) -> list[JoinResult]:
        replies: list[JoinResult] = []
        self.coordinator.join(
            JoinRequest(
                group_id=group, member_id=member, group_instance_id=instance, client_id=client_id, client_host="/127.0.0.1",
                session_timeout_ms=session_ms, rebalance_timeout_ms=rebalance_ms, protocol_type=protocol_type,
                protocols=tuple(protocols), require_known_member_id=known_id_required,
                supports_skip_assignment=skip_assignment,
            ),
            replies.append,
        )
        return replies

    def sync(self, member: str, generation: int, assignments: dict[str, bytes] | None = None, group: str = "g", *,
             instance: str | None = None, protocol_type: str | None = None, protocol_name: str | None = None) -> list[SyncResult]:
        replies: list[SyncResult] = []
        self.coordinator.sync(group, member, instance, generation, protocol_type, protocol_name, assignments or {}, replies.append)
        return replies

    def new_member(self, group: str = "g", **kwargs: Any) -> str:
        """A member id from the MEMBER_ID_REQUIRED round."""
        [first] = self.join(group, **kwargs)
        assert first.error is E.MEMBER_ID_REQUIRED
        return first.member_id

    def group(self, group: str = "g"):
        found = self.coordinator.get(group)
        assert found is not None
        return found

    def stable_pair(self) -> tuple[str, str, int]:
        """Two members in a Stable group: (leader, follower, generation)."""
        a = self.new_member()
        b = self.new_member()
        ra = self.join(member=a)
        rb = self.join(member=b)
        self.advance(0)
        [ja], [jb] = ra, rb
        assert ja.error is jb.error is E.NONE
        assert ja.generation_id == jb.generation_id
        leader, follower = (a, b) if ja.leader == a else (b, a)
        generation = ja.generation_id
        assert self.sync(leader, generation, {leader: b"L", follower: b"F"})[0].error is E.NONE
        assert self.sync(follower, generation)[0].assignment == b"F"
        assert self.group().state is S.STABLE
        return leader, follower, generation


def commit(h: Harness, member: str, generation: int, *, instance: str | None = None, metadata: str | None = "m",
           group: str = "g", **kwargs: Any) -> GroupError:
    [error] = h.coordinator.commit_offsets(group, member, instance, generation, [OffsetCommit("t", 0, 42, 3, metadata)], **kwargs)
    return error


# ------------------------------------------------------------ state table
def test_transitions_are_kafkas_table() -> None:
    assert TRANSITIONS[S.PREPARING_REBALANCE] == {S.STABLE, S.COMPLETING_REBALANCE, S.EMPTY}
    assert TRANSITIONS[S.COMPLETING_REBALANCE] == {S.PREPARING_REBALANCE}
    assert TRANSITIONS[S.STABLE] == {S.COMPLETING_REBALANCE}
    assert TRANSITIONS[S.EMPTY] == {S.PREPARING_REBALANCE}
    h = Harness()
    h.new_member()
    with pytest.raises(AssertionError):
        h.group().transition_to(S.STABLE, 0)


def test_state_values_are_kafkas_names() -> None:
    assert [s.value for s in S] == ["Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"]


# -------------------------------------------------------------- join/sync
def test_first_join_requires_member_id_then_completes_after_initial_delay() -> None:
    h = Harness(**{"group.initial.rebalance.delay.ms": "3000"})
    [first] = h.join(client_id="client")
    assert first.error is E.MEMBER_ID_REQUIRED
    assert first.member_id.startswith("client-")
    assert h.group().state is S.EMPTY
    replies = h.join(member=first.member_id, protocols=[("range", b"R"), ("roundrobin", b"RR")])
    assert replies == []
    assert h.group().state is S.PREPARING_REBALANCE
    h.advance(2.9)
    assert replies == []
    h.advance(0.2)
    [result] = replies
    assert result.error is E.NONE
    assert result.generation_id == 1
    assert result.leader == result.member_id == first.member_id
    assert result.protocol_type == "consumer"
    assert result.protocol_name == "range"
    assert [(m.member_id, m.metadata) for m in result.members] == [(first.member_id, b"R")]
    assert h.group().state is S.COMPLETING_REBALANCE


def test_initial_delay_extends_when_members_keep_joining() -> None:
    h = Harness(**{"group.initial.rebalance.delay.ms": "3000"})
    a, b = h.new_member(), h.new_member()
    ra = h.join(member=a)
    h.advance(2.0)
    rb = h.join(member=b)
    h.advance(1.5)  # the first delay ran out, but b joined during it
    assert ra == rb == []
    h.advance(3.0)
    assert ra[0].error is rb[0].error is E.NONE
    assert len(ra[0].members) == 2 and rb[0].members == ()


def test_join_v3_and_older_gets_member_id_at_once() -> None:
    h = Harness()
    replies = h.join(known_id_required=False)
    h.advance(0)
    [result] = replies
    assert result.error is E.NONE and result.member_id


def test_follower_sync_waits_for_leader_and_leader_assigns() -> None:
    h = Harness()
    a, b = h.new_member(), h.new_member()
    ra, rb = h.join(member=a), h.join(member=b)
    h.advance(0)
    leader = ra[0].leader
    follower = b if leader == a else a
    generation = ra[0].generation_id
    parked = h.sync(follower, generation)
    assert parked == []
    assert h.sync(leader, generation, {leader: b"one", follower: b"two"}) == [
        SyncResult(protocol_type="consumer", protocol_name="range", assignment=b"one")
    ]
    assert parked == [SyncResult(protocol_type="consumer", protocol_name="range", assignment=b"two")]
    assert h.group().state is S.STABLE
    # a repeated SyncGroup in Stable gets the same assignment
    assert h.sync(follower, generation)[0].assignment == b"two"


def test_member_left_out_of_assignment_gets_empty_bytes() -> None:
    h = Harness()
    leader, follower, generation = h.stable_pair()
    assert h.group().members[follower].assignment == b"F"
    h2 = Harness()
    a, b = h2.new_member(), h2.new_member()
    ra, rb = h2.join(member=a), h2.join(member=b)
    h2.advance(0)
    leader = ra[0].leader
    other = b if leader == a else a
    h2.sync(leader, 1, {leader: b"x"})
    assert h2.sync(other, 1) == [SyncResult(protocol_type="consumer", protocol_name="range", assignment=b"")]


def test_sync_errors() -> None:
    h = Harness()
    leader, follower, generation = h.stable_pair()
    assert h.sync(leader, generation + 1)[0].error is E.ILLEGAL_GENERATION
    assert h.sync("nobody", generation)[0].error is E.UNKNOWN_MEMBER_ID
    assert h.sync(leader, generation, group="other")[0].error is E.UNKNOWN_MEMBER_ID
    assert h.sync(leader, generation, group="")[0].error is E.INVALID_GROUP_ID
    assert h.sync(leader, generation, protocol_type="connect")[0].error is E.INCONSISTENT_GROUP_PROTOCOL
    assert h.sync(leader, generation, protocol_name="roundrobin")[0].error is E.INCONSISTENT_GROUP_PROTOCOL
    assert h.sync(leader, generation, protocol_type="consumer", protocol_name="range")[0].error is E.NONE


def test_protocol_selection_by_vote_among_common_protocols() -> None:
    h = Harness()
    a, b, c = h.new_member(), h.new_member(), h.new_member()
    replies = h.join(member=a, protocols=[("sticky", b""), ("range", b"A")])
    replies += h.join(member=b, protocols=[("range", b"B"), ("roundrobin", b""), ("sticky", b"")])
    replies += h.join(member=c, protocols=[("range", b"C"), ("sticky", b"")])
    h.advance(0)
    assert {r.protocol_name for r in replies} == {"range"}
    leader = next(r for r in replies if r.members)
    assert sorted(m.metadata for m in leader.members) == [b"A", b"B", b"C"]


def test_join_with_no_common_protocol_or_other_type_is_inconsistent() -> None:
    h = Harness()
    h.join(member=h.new_member())
    h.advance(0)
    assert h.join(protocols=[("roundrobin", b"")])[0].error is E.INCONSISTENT_GROUP_PROTOCOL
    assert h.join(protocol_type="connect")[0].error is E.INCONSISTENT_GROUP_PROTOCOL


def test_join_checks_group_id_and_session_timeout() -> None:
    h = Harness()
    assert h.join(group="")[0].error is E.INVALID_GROUP_ID
    assert h.join(session_ms=5999)[0].error is E.INVALID_SESSION_TIMEOUT
    assert h.join(session_ms=1800001)[0].error is E.INVALID_SESSION_TIMEOUT
    assert h.join(member="ghost")[0].error is E.UNKNOWN_MEMBER_ID  # no such group
    assert h.coordinator.get("g") is None


# ------------------------------------------------------------- rebalances
def test_new_member_triggers_rebalance_and_heartbeat_tells_others() -> None:
    h = Harness()
    leader, follower, generation = h.stable_pair()
    newcomer = h.new_member()
    assert h.group().state is S.STABLE  # a pending member does not rebalance yet
    joining = h.join(member=newcomer)
    assert joining == []
    assert h.group().state is S.PREPARING_REBALANCE
    assert h.coordinator.heartbeat("g", leader, None, generation) is E.REBALANCE_IN_PROGRESS
    assert h.sync(follower, generation)[0].error is E.REBALANCE_IN_PROGRESS
    rl = h.join(member=leader)
    assert rl == []
    rf = h.join(member=follower)
    # everyone rejoined: the phase completes without waiting
    assert joining[0].generation_id == rl[0].generation_id == rf[0].generation_id == generation + 1
    assert rl[0].leader == leader
    assert len(rl[0].members) == 3
    assert h.group().state is S.COMPLETING_REBALANCE
    assert h.coordinator.heartbeat("g", follower, None, generation + 1) is E.NONE


def test_members_not_rejoining_within_rebalance_timeout_are_removed() -> None:
    h = Harness()
    leader, follower, generation = h.stable_pair()
    rl = h.join(member=leader, rebalance_ms=20000)  # the leader asks for a rebalance
    assert h.group().state is S.PREPARING_REBALANCE
    for _ in range(5):  # the follower heartbeats (so its session lives) but never rejoins
        h.advance(5)
        assert h.coordinator.heartbeat("g", follower, None, generation) is E.REBALANCE_IN_PROGRESS
    assert rl == []
    h.advance(6)  # the group's rebalance timeout is the largest of its members' (30 s)
    [result] = rl
    assert result.error is E.NONE
    assert result.generation_id == generation + 1
    assert [m.member_id for m in result.members] == [leader]
    assert list(h.group().members) == [leader]
    assert h.coordinator.heartbeat("g", follower, None, generation) is E.UNKNOWN_MEMBER_ID


def test_leader_that_does_not_rejoin_is_replaced() -> None:
    h = Harness()
    leader, follower, generation = h.stable_pair()
    # a follower changing its protocols forces a rebalance; the leader never rejoins
    rf = h.join(member=follower, protocols=[("range", b"changed")])
    h.advance(31)
    assert rf[0].leader == follower
    assert h.group().leader_id == follower


def test_leave_rebalances_the_rest() -> None:
    h = Harness()
    leader, follower, generation = h.stable_pair()
    error, results = h.coordinator.leave("g", [(follower, None)])
    assert error is E.NONE and results[0].error is E.NONE
    assert h.group().state is S.PREPARING_REBALANCE
    assert h.coordinator.heartbeat("g", leader, None, generation) is E.REBALANCE_IN_PROGRESS
    [result] = h.join(member=leader)
    assert result.generation_id == generation + 1
    assert len(result.members) == 1


def test_last_member_leaving_empties_the_group() -> None:
    h = Harness()
    leader, follower, generation = h.stable_pair()
    h.coordinator.leave("g", [(leader, None), (follower, None)])
    group = h.group()
    assert group.state is S.EMPTY
    assert group.generation_id == generation + 1
    assert group.protocol_name is None
    assert group.protocol_type == "consumer"


def test_leave_errors() -> None:
    h = Harness()
    leader, follower, generation = h.stable_pair()
    error, results = h.coordinator.leave("g", [("ghost", None), ("", "no-such-instance")])
    assert error is E.NONE
    assert [r.error for r in results] == [E.UNKNOWN_MEMBER_ID, E.UNKNOWN_MEMBER_ID]
    assert h.group().state is S.STABLE  # nobody left
    error, results = h.coordinator.leave("unknown-group", [(leader, None)])
    assert error is E.NONE and results[0].error is E.UNKNOWN_MEMBER_ID
    assert h.coordinator.leave("", [(leader, None)])[0] is E.INVALID_GROUP_ID


def test_pending_member_can_leave() -> None:
    h = Harness()
    pending = h.new_member()
    error, results = h.coordinator.leave("g", [(pending, None)])
    assert results[0].error is E.NONE
    assert h.join(member=pending)[0].error is E.UNKNOWN_MEMBER_ID


def test_leader_rejoin_in_stable_rebalances_but_follower_with_same_metadata_does_not() -> None:
    h = Harness()
    leader, follower, generation = h.stable_pair()
    [same] = h.join(member=follower)
    assert same.error is E.NONE and same.generation_id == generation and same.members == ()
    assert h.group().state is S.STABLE
    assert h.join(member=leader) == []
    assert h.group().state is S.PREPARING_REBALANCE


def test_rejoin_during_completing_rebalance_returns_current_generation() -> None:
    h = Harness()
    a = h.new_member()
    h.join(member=a)
    h.advance(0)
    assert h.group().state is S.COMPLETING_REBALANCE
    [again] = h.join(member=a)
    assert again.generation_id == 1 and again.leader == a and len(again.members) == 1


def test_rebalance_during_completing_rebalance_fails_parked_syncs() -> None:
    h = Harness()
    a, b = h.new_member(), h.new_member()
    ra, rb = h.join(member=a), h.join(member=b)
    h.advance(0)
    leader = ra[0].leader
    follower = b if leader == a else a
    parked = h.sync(follower, 1)
    h.join(member=h.new_member())
    assert parked[0].error is E.REBALANCE_IN_PROGRESS


# --------------------------------------------------------------- sessions
def test_session_timeout_evicts_silent_member() -> None:
    h = Harness()
    leader, follower, generation = h.stable_pair()
    h.advance(6)
    assert h.coordinator.heartbeat("g", leader, None, generation) is E.NONE
    h.advance(3.9)
    assert follower in h.group().members
    h.advance(0.2)
    # the follower stayed silent for 10.1 s against a 10 s session timeout
    assert follower not in h.group().members
    assert h.group().state is S.PREPARING_REBALANCE
    assert h.coordinator.heartbeat("g", leader, None, generation) is E.REBALANCE_IN_PROGRESS


def test_heartbeats_and_commits_keep_the_session() -> None:
    h = Harness()
    leader, follower, generation = h.stable_pair()
    for _ in range(4):
        h.advance(6)
        assert h.coordinator.heartbeat("g", leader, None, generation) is E.NONE
        assert commit(h, follower, generation) is E.NONE
    assert set(h.group().members) == {leader, follower}


def test_pending_member_expires_after_session_timeout() -> None:
    h = Harness()
    pending = h.new_member(session_ms=6000)
    assert pending in h.group().pending_members
    h.advance(7)
    assert h.group().pending_members == set()
    assert h.join(member=pending)[0].error is E.UNKNOWN_MEMBER_ID


def test_member_that_never_syncs_is_removed_after_rebalance_timeout() -> None:
    h = Harness()
    a, b = h.new_member(), h.new_member()
    ra, rb = h.join(member=a, rebalance_ms=8000), h.join(member=b, rebalance_ms=8000)
    h.advance(0)
    leader = ra[0].leader
    follower = b if leader == a else a
    h.sync(leader, 1, {leader: b"x", follower: b"y"})
    for _ in range(3):
        h.advance(3)
        h.coordinator.heartbeat("g", leader, None, 1)
        h.coordinator.heartbeat("g", follower, None, 1)
    assert follower not in h.group().members
    assert h.group().state is S.PREPARING_REBALANCE


def test_heartbeat_errors() -> None:
    h = Harness()
    leader, follower, generation = h.stable_pair()
    assert h.coordinator.heartbeat("g", leader, None, generation - 1) is E.ILLEGAL_GENERATION
    assert h.coordinator.heartbeat("g", "ghost", None, generation) is E.UNKNOWN_MEMBER_ID
    assert h.coordinator.heartbeat("nope", leader, None, generation) is E.UNKNOWN_MEMBER_ID
    assert h.coordinator.heartbeat("", leader, None, generation) is E.INVALID_GROUP_ID


# ------------------------------------------------------- static membership
def static_group(h: Harness) -> tuple[str, str, int]:
    a = h.join(instance="ia")
    b = h.join(instance="ib")
    h.advance(0)
    leader = next(r for r in a + b if r.members).member_id
    ids = {r.member_id for r in a + b}
    follower = (ids - {leader}).pop()
    generation = a[0].generation_id
    h.sync(leader, generation, {leader: b"L", follower: b"F"})
    h.sync(follower, generation)
    assert h.group().state is S.STABLE
    return leader, follower, generation


def test_static_members_join_without_member_id_round() -> None:
    h = Harness()
    replies = h.join(instance="ia")  # parked until the phase completes, no MEMBER_ID_REQUIRED
    assert replies == []
    h.advance(0)
    [a] = replies
    assert a.error is E.NONE and a.member_id.startswith("ia-")


def test_static_rejoin_replaces_member_id_without_rebalance() -> None:
    h = Harness()
    leader, follower, generation = static_group(h)
    [rejoined] = h.join(instance="ib")
    assert rejoined.error is E.NONE
    assert rejoined.member_id != follower and rejoined.member_id.startswith("ib-")
    assert rejoined.generation_id == generation
    assert h.group().state is S.STABLE
    assert h.sync(rejoined.member_id, generation)[0].assignment == b"F"
    # the old id is fenced
    assert h.coordinator.heartbeat("g", follower, "ib", generation) is E.FENCED_INSTANCE_ID
    assert commit(h, follower, generation, instance="ib") is E.FENCED_INSTANCE_ID
    assert h.join(member=follower, instance="ib")[0].error is E.FENCED_INSTANCE_ID
    assert h.coordinator.heartbeat("g", rejoined.member_id, "ib", generation) is E.NONE


def test_static_leader_rejoin_skips_assignment_from_v9_and_follows_before() -> None:
    h = Harness()
    leader, follower, generation = static_group(h)
    instance = next(m.group_instance_id for m in h.group().members.values() if m.member_id == leader)
    [v9] = h.join(instance=instance)
    assert v9.leader == v9.member_id and v9.skip_assignment and len(v9.members) == 2
    [v8] = h.join(instance=instance, skip_assignment=False)
    # before v9 the rejoined leader is told the old leader id, so it only syncs
    assert v8.leader == v9.member_id != v8.member_id and not v8.skip_assignment and v8.members == ()
    assert h.group().state is S.STABLE


def test_static_rejoin_with_other_protocol_rebalances() -> None:
    h = Harness()
    static_group(h)
    replies = h.join(instance="ib", protocols=[("range", b"x"), ("sticky", b"y")])
    assert h.group().state is S.STABLE  # range is still everyone's choice
    assert replies[0].error is E.NONE


def test_static_member_survives_missing_rebalance_and_leaves_by_instance_id() -> None:
    h = Harness()
    leader, follower, generation = static_group(h)
    h.join(member=leader, instance=next(m.group_instance_id for m in h.group().members.values() if m.member_id == leader))
    for _ in range(7):
        h.advance(5)
        h.coordinator.heartbeat("g", follower, "ib", generation)
    # static members that did not rejoin are kept (only their session can expire them)
    assert follower in h.group().members
    error, results = h.coordinator.leave("g", [("", "ib")])
    assert results[0].error is E.NONE and results[0].member_id == ""
    assert follower not in h.group().members


def test_static_member_session_expiry_removes_it() -> None:
    h = Harness()
    leader, follower, generation = static_group(h)
    h.advance(6)
    h.coordinator.heartbeat("g", leader, None, generation)
    h.advance(5)
    assert list(h.group().members) == [leader]
    assert "ib" not in h.group().static_members
    assert h.group().state is S.PREPARING_REBALANCE


# ------------------------------------------------------------------ offsets
def test_commit_checks_generation_and_member() -> None:
    h = Harness()
    leader, follower, generation = h.stable_pair()
    assert commit(h, leader, generation) is E.NONE
    assert commit(h, leader, generation + 1) is E.ILLEGAL_GENERATION
    assert commit(h, "ghost", generation) is E.UNKNOWN_MEMBER_ID
    assert commit(h, "", -1) is E.UNKNOWN_MEMBER_ID  # outside group management while members exist
    offsets = h.coordinator.committed("g")
    assert offsets[("t", 0)].offset == 42 and offsets[("t", 0)].leader_epoch == 3 and offsets[("t", 0)].metadata == "m"


def test_commit_during_completing_rebalance_is_rebalance_in_progress() -> None:
    h = Harness()
    a = h.new_member()
    h.join(member=a)
    h.advance(0)
    assert commit(h, a, 1) is E.REBALANCE_IN_PROGRESS


def test_commit_in_preparing_rebalance_is_accepted() -> None:
    h = Harness()
    leader, follower, generation = h.stable_pair()
    h.join(member=leader)
    assert h.group().state is S.PREPARING_REBALANCE
    assert commit(h, follower, generation) is E.NONE


def test_simple_consumer_commits_without_membership() -> None:
    h = Harness()
    assert commit(h, "", -1, group="simple") is E.NONE
    group = h.coordinator.get("simple")
    assert group is not None and group.state is S.EMPTY and group.protocol_type is None
    assert commit(h, "", -1, group="simple", metadata=None) is E.NONE
    assert h.coordinator.committed("simple")[("t", 0)].metadata == ""


def test_commit_to_missing_group_with_generation() -> None:
    h = Harness()
    assert commit(h, "m", 3, group="nope") is E.ILLEGAL_GENERATION
    assert commit(h, "m", 3, group="nope", missing_group_error=E.GROUP_ID_NOT_FOUND) is E.GROUP_ID_NOT_FOUND
    assert h.coordinator.get("nope") is None


def test_commit_metadata_size_limit() -> None:
    h = Harness(**{"offset.metadata.max.bytes": "5"})
    assert commit(h, "", -1, metadata="12345") is E.NONE
    assert commit(h, "", -1, metadata="123456") is E.OFFSET_METADATA_TOO_LARGE


def test_offset_delete_refuses_subscribed_topics() -> None:
    h = Harness()
    subscription = struct.pack(">hi", 0, 1) + struct.pack(">h", 2) + b"t1" + struct.pack(">i", -1)
    assert consumer_subscription_topics(subscription) == {"t1"}
    a = h.new_member()
    h.join(member=a, protocols=[("range", subscription)])
    h.advance(0)
    h.sync(a, 1, {a: b""})
    h.coordinator.commit_offsets("g", a, None, 1, [OffsetCommit("t1", 0, 1), OffsetCommit("t2", 0, 2)])
    error, results = h.coordinator.delete_offsets("g", [("t1", [0]), ("t2", [0])])
    assert error is E.NONE
    assert results == [[E.GROUP_SUBSCRIBED_TO_TOPIC], [E.NONE]]
    assert set(h.coordinator.committed("g")) == {("t1", 0)}
    assert h.coordinator.delete_offsets("zzz", [("t1", [0])])[0] is E.GROUP_ID_NOT_FOUND


def test_offset_delete_on_non_consumer_group_with_members() -> None:
    h = Harness()
    h.join(member=h.new_member(protocol_type="connect"), protocol_type="connect")
    h.advance(0)
    assert h.coordinator.delete_offsets("g", [("t", [0])])[0] is E.NON_EMPTY_GROUP


# ------------------------------------------------------------------- admin
def test_delete_groups() -> None:
    h = Harness()
    h.stable_pair()
    commit(h, "", -1, group="idle")
    results = h.coordinator.delete_groups(["g", "idle", "missing"])
    assert results == [("g", E.NON_EMPTY_GROUP), ("idle", E.NONE), ("missing", E.GROUP_ID_NOT_FOUND)]
    assert h.coordinator.get("idle") is None
    assert h.coordinator.committed("idle") == {}


def test_list_groups_filters() -> None:
    h = Harness()
    h.stable_pair()
    commit(h, "", -1, group="idle")
    assert {g.group_id for g in h.coordinator.list_groups()} == {"g", "idle"}
    assert [g.group_id for g in h.coordinator.list_groups(["stable"])] == ["g"]
    assert [g.group_id for g in h.coordinator.list_groups([" EMPTY "])] == ["idle"]
    assert h.coordinator.list_groups(types=["consumer"]) == []
    assert len(h.coordinator.list_groups(types=["Classic"])) == 2


# ------------------------------------------------------ through the wire
def request_bytes(api_key: int, version: int, correlation_id: int, **fields: Any) -> bytes:
    cls = request_class(api_key, version)
    header_cls = cls.__header_schema__
    buffer = io.BytesIO()
    header = dict(request_api_key=api_key, request_api_version=version, correlation_id=correlation_id)
    if "client_id" in header_cls.__dataclass_fields__:
        header["client_id"] = "unit"
    entity_writer(header_cls)(buffer, header_cls(**header))
    entity_writer(cls)(buffer, build(cls, **fields))
    body = buffer.getvalue()
    return struct.pack(">i", len(body)) + body


def read_responses(conn: KafkaConnection, api_versions: list[tuple[int, int]]) -> list[tuple[int, Any]]:
    data = conn.data_to_send()
    out = []
    for api_key, version in api_versions:
        size = struct.unpack_from(">i", data)[0]
        frame, data = data[4 : 4 + size], data[4 + size :]
        cls = response_class(api_key, version)
        offset = 5 if cls.__flexible__ else 4
        out.append((struct.unpack_from(">i", frame)[0], entity_reader(cls)(frame, offset)[0]))
    assert data == b""
    return out


def wire_broker() -> tuple[Broker, Clock]:
    clock = Clock()
    broker = Broker(Scheduler(clock=clock, wall=clock))
    broker.kafka_configs["group.initial.rebalance.delay.ms"] = "0"
    return broker, clock


def join_fields(member_id: str = "", group: str = "wg") -> dict[str, Any]:
    return dict(group_id=group, session_timeout=10000, rebalance_timeout=30000, member_id=member_id, protocol_type="consumer",
                protocols=[dict(name="range", metadata=b"meta")])


@pytest.mark.parametrize("version", range(2, 10))
def test_join_group_every_version_on_the_wire(version: int) -> None:
    broker, _ = wire_broker()
    conn = KafkaConnection(broker, peer="127.0.0.1:5000")
    conn.receive_data(request_bytes(11, version, 1, **join_fields()))
    if version >= 4:
        [(_, first)] = read_responses(conn, [(11, version)])
        assert first.error_code == ErrorCode.member_id_required
        conn.receive_data(request_bytes(11, version, 2, **join_fields(first.member_id)))
    assert conn.data_to_send() == b""  # parked until the join phase completes
    broker.scheduler.run_due()
    [(correlation_id, joined)] = read_responses(conn, [(11, version)])
    assert correlation_id == (2 if version >= 4 else 1)
    assert joined.error_code == ErrorCode.none
    assert joined.generation_id == 1 and joined.protocol_name == "range" and joined.leader == joined.member_id
    assert [(m.member_id, m.metadata) for m in joined.members] == [(joined.member_id, b"meta")]
    group = broker.groups.get("wg")
    assert group is not None and group.members[joined.member_id].client_host == "/127.0.0.1"


def test_parked_join_keeps_order_on_its_connection_and_does_not_stall_others() -> None:
    broker, _ = wire_broker()
    a = KafkaConnection(broker, peer="127.0.0.1:1")
    b = KafkaConnection(broker, peer="127.0.0.1:2")
    a.receive_data(request_bytes(11, 5, 1, **join_fields()))
    [(_, required)] = read_responses(a, [(11, 5)])
    # JoinGroup parks; the Heartbeat behind it on the same connection waits for it
    a.receive_data(request_bytes(11, 5, 2, **join_fields(required.member_id)) +
                   request_bytes(12, 4, 3, group_id="wg", generation_id=0, member_id=required.member_id))
    assert a.data_to_send() == b""
    # another connection is served meanwhile
    b.receive_data(request_bytes(16, 4, 9, states_filter=[]))
    [(_, listed)] = read_responses(b, [(16, 4)])
    assert [(g.group_id, g.group_state) for g in listed.groups] == [("wg", "PreparingRebalance")]
    broker.scheduler.run_due()
    (c1, joined), (c2, beat) = read_responses(a, [(11, 5), (12, 4)])
    assert (c1, c2) == (2, 3)
    assert joined.error_code == ErrorCode.none
    assert beat.error_code == ErrorCode.rebalance_in_progress  # handled on arrival, answered in order


def test_follower_sync_is_deferred_until_leader_syncs_across_connections() -> None:
    broker, _ = wire_broker()
    a = KafkaConnection(broker, peer="127.0.0.1:1")
    b = KafkaConnection(broker, peer="127.0.0.1:2")
    ids = []
    for conn in (a, b):
        conn.receive_data(request_bytes(11, 9, 1, **join_fields()))
        [(_, required)] = read_responses(conn, [(11, 9)])
        ids.append(required.member_id)
        conn.receive_data(request_bytes(11, 9, 2, **join_fields(required.member_id)))
    broker.scheduler.run_due()
    [(_, ja)] = read_responses(a, [(11, 9)])
    [(_, jb)] = read_responses(b, [(11, 9)])
    leader_conn, follower_conn = (a, b) if ja.leader == ja.member_id else (b, a)
    leader, follower = ja.leader, (set(ids) - {ja.leader}).pop()
    sync = dict(group_id="wg", generation_id=1, protocol_type="consumer", protocol_name="range")
    follower_conn.receive_data(request_bytes(14, 5, 3, member_id=follower, assignments=[], **sync))
    assert follower_conn.data_to_send() == b""
    woken = []
    follower_conn.on_wake = lambda: woken.append(True)
    leader_conn.receive_data(request_bytes(14, 5, 3, member_id=leader, assignments=[
        dict(member_id=leader, assignment=b"L"), dict(member_id=follower, assignment=b"F")], **sync))
    [(_, mine)] = read_responses(leader_conn, [(14, 5)])
    [(_, theirs)] = read_responses(follower_conn, [(14, 5)])
    assert (mine.assignment, theirs.assignment) == (b"L", b"F")
    assert theirs.protocol_name == "range" and theirs.protocol_type == "consumer"
    assert woken == [True]


@pytest.mark.parametrize("version", range(0, 7))
def test_find_coordinator_every_version(version: int) -> None:
    broker, _ = wire_broker()
    conn = KafkaConnection(broker, peer="127.0.0.1:1", advertised=("example", 1234))
    if version < 4:
        fields: dict[str, Any] = dict(key="g")
        if version >= 1:
            fields["key_type"] = 0
        conn.receive_data(request_bytes(10, version, 1, **fields))
        [(_, body)] = read_responses(conn, [(10, version)])
        assert (body.error_code, body.node_id, body.host, body.port) == (ErrorCode.none, 0, "example", 1234)
    else:
        conn.receive_data(request_bytes(10, version, 1, key_type=0, coordinator_keys=["a", "b"]))
        [(_, body)] = read_responses(conn, [(10, version)])
        assert [(c.key, c.node_id, c.host, c.port, c.error_code) for c in body.coordinators] == [
            ("a", 0, "example", 1234, ErrorCode.none), ("b", 0, "example", 1234, ErrorCode.none)]


def test_find_transaction_coordinator_without_transactions() -> None:
    """This broker is named, so InitProducerId's clean refusal is what a
    transactional producer sees, instead of retrying until its timeout."""
    broker, _ = wire_broker()
    conn = KafkaConnection(broker, peer="127.0.0.1:1", advertised=("example", 1234))
    conn.receive_data(request_bytes(10, 4, 1, key_type=1, coordinator_keys=["tx"]))
    [(_, body)] = read_responses(conn, [(10, 4)])
    assert [(c.key, c.error_code, c.node_id, c.host, c.port) for c in body.coordinators] == [("tx", ErrorCode.none, 0, "example", 1234)]


def test_offset_commit_and_fetch_on_the_wire() -> None:
    broker, _ = wire_broker()
    broker.topics.create("t", 2)
    conn = KafkaConnection(broker, peer="127.0.0.1:1")
    conn.receive_data(request_bytes(8, 9, 1, group_id="simple", generation_id_or_member_epoch=-1, member_id="", topics=[
        dict(name="t", partitions=[dict(partition_index=0, committed_offset=7, committed_leader_epoch=2, committed_metadata="hello"),
                                   dict(partition_index=5, committed_offset=1, committed_metadata=None)]),
        dict(name="missing", partitions=[dict(partition_index=0, committed_offset=1, committed_metadata=None)])]))
    [(_, committed)] = read_responses(conn, [(8, 9)])
    assert [[(p.partition_index, p.error_code) for p in t.partitions] for t in committed.topics] == [
        [(0, ErrorCode.none), (5, ErrorCode.unknown_topic_or_partition)], [(0, ErrorCode.unknown_topic_or_partition)]]
    conn.receive_data(request_bytes(9, 7, 2, group_id="simple", topics=None, require_stable=True))
    [(_, fetched)] = read_responses(conn, [(9, 7)])
    assert [(t.name, [(p.partition_index, p.committed_offset, p.committed_leader_epoch, p.metadata) for p in t.partitions])
            for t in fetched.topics] == [("t", [(0, 7, 2, "hello")])]
    conn.receive_data(request_bytes(9, 9, 3, groups=[
        dict(group_id="simple", topics=[dict(name="t", partition_indexes=[0, 1])]),
        dict(group_id="unknown", topics=None)]))
    [(_, batched)] = read_responses(conn, [(9, 9)])
    first, second = batched.groups
    assert [(p.partition_index, p.committed_offset, p.metadata) for p in first.topics[0].partitions] == [(0, 7, "hello"), (1, -1, "")]
    assert second.group_id == "unknown" and second.topics == () and second.error_code == ErrorCode.none
    # a commit with a generation to a group that does not exist
    conn.receive_data(request_bytes(8, 8, 4, group_id="nope", generation_id_or_member_epoch=3, member_id="m", topics=[
        dict(name="t", partitions=[dict(partition_index=0, committed_offset=1, committed_metadata=None)])]))
    [(_, refused)] = read_responses(conn, [(8, 8)])
    assert refused.topics[0].partitions[0].error_code == ErrorCode.illegal_generation


def test_describe_list_delete_on_the_wire() -> None:
    broker, _ = wire_broker()
    conn = KafkaConnection(broker, peer="[::1]:1")
    conn.receive_data(request_bytes(11, 7, 1, group_instance_id="inst", **join_fields()))
    broker.scheduler.run_due()
    [(_, joined)] = read_responses(conn, [(11, 7)])
    conn.receive_data(request_bytes(14, 5, 2, group_id="wg", generation_id=1, member_id=joined.member_id,
                                    group_instance_id="inst", assignments=[dict(member_id=joined.member_id, assignment=b"A")]))
    conn.receive_data(request_bytes(15, 5, 3, groups=["wg", "none"], include_authorized_operations=False))
    conn.receive_data(request_bytes(42, 2, 4, groups_names=["wg", "none"]))
    (_, _), (_, described), (_, deleted) = read_responses(conn, [(14, 5), (15, 5), (42, 2)])
    wg, none = described.groups
    assert (wg.group_state, wg.protocol_type, wg.protocol_data) == ("Stable", "consumer", "range")
    [member] = wg.members
    assert (member.group_instance_id, member.client_host, member.member_metadata, member.member_assignment) == (
        "inst", "/::1", b"meta", b"A")
    assert (none.group_state, none.error_code, none.members) == ("Dead", ErrorCode.none, ())
    assert [(r.group_id, r.error_code) for r in deleted.results] == [
        ("wg", ErrorCode.non_empty_group), ("none", ErrorCode.group_id_not_found)]
    conn.receive_data(request_bytes(13, 5, 5, group_id="wg", members=[dict(member_id=joined.member_id, group_instance_id="inst")]))
    conn.receive_data(request_bytes(16, 5, 6, states_filter=["Empty"], types_filter=[]))
    conn.receive_data(request_bytes(42, 0, 7, groups_names=["wg"]))
    (_, left), (_, listed), (_, gone) = read_responses(conn, [(13, 5), (16, 5), (42, 0)])
    assert left.error_code == ErrorCode.none and left.members[0].error_code == ErrorCode.none
    assert [(g.group_id, g.group_state, g.group_type) for g in listed.groups] == [("wg", "Empty", "classic")]
    assert gone.results[0].error_code == ErrorCode.none
    assert broker.groups.get("wg") is None


def test_leave_group_v0_folds_member_error() -> None:
    broker, _ = wire_broker()
    conn = KafkaConnection(broker, peer="127.0.0.1:1")
    conn.receive_data(request_bytes(13, 0, 1, group_id="nope", member_id="m"))
    [(_, body)] = read_responses(conn, [(13, 0)])
    assert body.error_code == ErrorCode.unknown_member_id


def test_session_timeout_resolves_nothing_for_closed_connection() -> None:
    broker, clock = wire_broker()
    conn = KafkaConnection(broker, peer="127.0.0.1:1")
    conn.receive_data(request_bytes(11, 9, 1, **join_fields()))
    [(_, required)] = read_responses(conn, [(11, 9)])
    conn.receive_data(request_bytes(11, 9, 2, **join_fields(required.member_id)))
    conn.connection_lost()
    broker.scheduler.run_due()  # the join completes for a connection that is gone
    assert conn.data_to_send() == b""
    clock.now += 11
    broker.scheduler.run_due()
    group = broker.groups.get("wg")
    assert group is not None and group.state is GroupState.EMPTY


def test_parked_sync_of_a_removed_member_is_answered() -> None:
    h = Harness()
    a, b = h.new_member(), h.new_member()
    ra, rb = h.join(member=a), h.join(member=b)
    h.advance(0)
    leader = ra[0].leader
    follower = b if leader == a else a
    parked = h.sync(follower, 1)
    h.coordinator.leave("g", [(follower, None)])
    # Kafka leaves it unanswered until the client times out; an answer keeps the connection going
    assert parked == [SyncResult(error=E.UNKNOWN_MEMBER_ID)]


def test_offset_delete_on_the_wire() -> None:
    broker, _ = wire_broker()
    broker.topics.create("t", 1)
    conn = KafkaConnection(broker, peer="127.0.0.1:1")
    conn.receive_data(request_bytes(8, 9, 1, group_id="simple", generation_id_or_member_epoch=-1, member_id="", topics=[
        dict(name="t", partitions=[dict(partition_index=0, committed_offset=7, committed_metadata=None)])]))
    conn.receive_data(request_bytes(47, 0, 2, group_id="simple", topics=[
        dict(name="t", partitions=[dict(partition_index=0), dict(partition_index=3)]),
        dict(name="gone", partitions=[dict(partition_index=0)])]))
    conn.receive_data(request_bytes(47, 0, 3, group_id="nope", topics=[dict(name="t", partitions=[dict(partition_index=0)])]))
    (_, _), (_, deleted), (_, missing) = read_responses(conn, [(8, 9), (47, 0), (47, 0)])
    assert deleted.error_code == ErrorCode.none
    assert [(t.name, [(p.partition_index, p.error_code) for p in t.partitions]) for t in deleted.topics] == [
        ("t", [(0, ErrorCode.none), (3, ErrorCode.unknown_topic_or_partition)]),
        ("gone", [(0, ErrorCode.unknown_topic_or_partition)])]
    assert broker.groups.committed("simple") == {}
    assert (missing.error_code, missing.topics) == (ErrorCode.group_id_not_found, ())
