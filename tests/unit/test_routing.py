"""Topic trie and headers matching, as RabbitMQ 3.10 routes.

The topic table below was recorded from a real RabbitMQ 3.10.8: every
pattern bound to its own queue on one topic exchange, every key published
once, and the queues that received the message noted.  The headers cases
follow ``rabbit_exchange_type_headers:headers_match/2``: values compare with
Erlang's ``==`` (so the integer widths are equal, ``1 == 1.0``, a boolean is
never an integer), ``x-`` keys count only in the ``-with-x`` modes, and a
void binding value asks for the key's presence.
"""

from __future__ import annotations

import datetime
import decimal
import re

import pytest
from hypothesis import given, settings, strategies as st

from wiregate.core.routing import TopicTrie, headers_match, split_topic, valid_x_match, x_match_mode

# ----------------------------------------------------------------- topic

KEYS = [
    "a.b.c", "a.b", "a", "", "b", "b.a", "a.x.y.b", "a.x.y", "a..b", ".", ".b",
    "a.", "#", "*", "A", "a.b.c.d", "x.a.y", "..", "a.b.b",
]

#: pattern -> the keys (of KEYS) RabbitMQ 3.10.8 routed to it
RABBITMQ_TOPIC_TABLE = [
    ("a.b.c", ["a.b.c"]),
    ("a.b", ["a.b"]),
    ("*", ["a", "b", "#", "*", "A"]),
    ("a.*", ["a.b", "a."]),
    ("*.b", ["a.b", ".b"]),
    ("*.*", ["a.b", "b.a", ".", ".b", "a."]),
    ("#", KEYS),
    ("a.#", ["a.b.c", "a.b", "a", "a.x.y.b", "a.x.y", "a..b", "a.", "a.b.c.d", "a.b.b"]),
    ("#.a", ["a", "b.a"]),
    ("a.#.b", ["a.b", "a.x.y.b", "a..b", "a.b.b"]),
    ("#.#", KEYS),
    ("*.#", [k for k in KEYS if k != ""]),
    ("#.*", [k for k in KEYS if k != ""]),
    ("a..b", ["a..b"]),
    ("a.*.b", ["a..b", "a.b.b"]),
    ("", [""]),
    ("#.#.#", KEYS),
    ("#.b.#", ["a.b.c", "a.b", "b", "b.a", "a.x.y.b", "a..b", ".b", "a.b.c.d", "a.b.b"]),
    ("*.*.*", ["a.b.c", "a.x.y", "a..b", "x.a.y", "..", "a.b.b"]),
    ("A", ["A"]),
    ("a", ["a"]),
    ("a.", ["a."]),
    (".", ["."]),
    ("..", [".."]),
    ("#.", [".", "a.", ".."]),
    ("*.", [".", "a."]),
    ("a.#.#.b", ["a.b", "a.x.y.b", "a..b", "a.b.b"]),
    ("#.a.#", ["a.b.c", "a.b", "a", "b.a", "a.x.y.b", "a.x.y", "a..b", "a.", "a.b.c.d", "x.a.y", "a.b.b"]),
]


def test_split_topic_empty_key_has_no_words() -> None:
    assert split_topic("") == []
    assert split_topic("a..b") == ["a", "", "b"]
    assert split_topic(".") == ["", ""]
    assert split_topic("a.") == ["a", ""]


@pytest.mark.parametrize(("pattern", "matching"), RABBITMQ_TOPIC_TABLE, ids=lambda v: repr(v) if isinstance(v, str) else None)
def test_topic_pattern_matches_what_rabbitmq_routes(pattern: str, matching: list[str]) -> None:
    trie = TopicTrie()
    trie.add(pattern, "q")
    routed = [key for key in KEYS if trie.match(key)]
    assert routed == matching


def test_topic_table_all_patterns_in_one_trie() -> None:
    """The same table with every pattern bound at once (shared trie prefixes)."""
    trie = TopicTrie()
    for pattern, _ in RABBITMQ_TOPIC_TABLE:
        trie.add(pattern, pattern)
    for key in KEYS:
        expected = {pattern for pattern, matching in RABBITMQ_TOPIC_TABLE if key in matching}
        assert trie.match(key) == expected, key


def test_topic_star_needs_exactly_one_word() -> None:
    trie = TopicTrie()
    trie.add("*", "q")
    assert trie.match("") == set()  # zero words
    assert trie.match("word") == {"q"}
    assert trie.match("two.words") == set()


def test_topic_hash_alone_matches_everything_including_empty_key() -> None:
    trie = TopicTrie()
    trie.add("#", "q")
    for key in ("", "a", "a.b.c.d.e.f", ".", "..."):
        assert trie.match(key) == {"q"}


def test_topic_many_bindings_many_destinations() -> None:
    trie = TopicTrie()
    trie.add("stock.#", "all-stock")
    trie.add("stock.*.nyse", "nyse")
    trie.add("stock.ibm.*", "ibm")
    trie.add("#.nyse", "nyse-any")
    trie.add("stock.ibm.nyse", "exact")
    trie.add("stock.ibm.nyse", "exact-2")
    assert trie.match("stock.ibm.nyse") == {"all-stock", "nyse", "ibm", "nyse-any", "exact", "exact-2"}
    assert trie.match("stock.msft.nyse") == {"all-stock", "nyse", "nyse-any"}
    assert trie.match("stock.ibm.lse") == {"all-stock", "ibm"}
    assert trie.match("nyse") == {"nyse-any"}
    assert trie.match("bond.x") == set()


def test_topic_destination_reached_once_through_several_patterns() -> None:
    trie = TopicTrie()
    for pattern in ("a.*", "a.#", "#", "*.b", "a.b"):
        trie.add(pattern, "q")
    assert trie.match("a.b") == {"q"}


def test_topic_add_twice_remove_once_keeps_binding() -> None:
    """A queue bound twice with one key (different arguments) is two bindings."""
    trie = TopicTrie()
    trie.add("a.*", "q")
    trie.add("a.*", "q")
    trie.remove("a.*", "q")
    assert trie.match("a.b") == {"q"}
    trie.remove("a.*", "q")
    assert trie.match("a.b") == set()
    assert not trie


def test_topic_remove_only_the_named_destination() -> None:
    trie = TopicTrie()
    trie.add("a.#", "q1")
    trie.add("a.#", "q2")
    trie.remove("a.#", "q1")
    assert trie.match("a.x") == {"q2"}


def test_topic_remove_unknown_is_harmless() -> None:
    trie = TopicTrie()
    trie.add("a.b", "q")
    trie.remove("a.b", "other")
    trie.remove("a.c", "q")
    trie.remove("a.b.c.d", "q")
    trie.remove("", "q")
    assert trie.match("a.b") == {"q"}


def _node_count(trie: TopicTrie) -> int:
    count = 0
    stack = [trie._root]
    while stack:
        node = stack.pop()
        count += 1
        stack.extend(node.children.values())
    return count


def test_topic_remove_prunes_empty_branches() -> None:
    trie = TopicTrie()
    trie.add("a.b", "q")
    trie.add("a.b.c.d", "q")
    trie.add("x.#.y", "q")
    before = _node_count(trie)
    trie.remove("a.b.c.d", "q")
    # c and d are gone; a.b (still bound) stays
    assert _node_count(trie) == before - 2
    assert trie.match("a.b") == {"q"}
    trie.remove("a.b", "q")
    trie.remove("x.#.y", "q")
    assert _node_count(trie) == 1
    assert not trie


def test_topic_empty_pattern_binding_counts() -> None:
    trie = TopicTrie()
    assert not trie
    trie.add("", "q")
    assert trie
    assert trie.match("") == {"q"}
    trie.remove("", "q")
    assert not trie


# reference: each routing-key word becomes ".word"; '*' is one such word,
# '#' any number of them (zero included), so the empty key is the empty string
def _regex_for(pattern: str) -> re.Pattern[str]:
    parts = []
    for word in split_topic(pattern):
        if word == "*":
            parts.append(r"\.[^.]*")
        elif word == "#":
            parts.append(r"(?:\.[^.]*)*")
        else:
            parts.append(r"\." + re.escape(word))
    return re.compile("".join(parts))


def _reference_match(pattern: str, key: str) -> bool:
    subject = "".join("." + word for word in split_topic(key))
    return _regex_for(pattern).fullmatch(subject) is not None


def test_reference_matcher_agrees_with_the_rabbitmq_table() -> None:
    for pattern, matching in RABBITMQ_TOPIC_TABLE:
        assert [key for key in KEYS if _reference_match(pattern, key)] == matching, pattern


_key_word = st.sampled_from(["a", "b", "c", ""])
_pattern_word = st.sampled_from(["a", "b", "", "*", "#"])
_keys = st.lists(_key_word, max_size=6).map(".".join)
_patterns = st.lists(_pattern_word, max_size=5).map(".".join)


@settings(max_examples=50, deadline=None, database=None)
@given(bindings=st.lists(st.tuples(_patterns, st.integers(0, 4)), max_size=12), keys=st.lists(_keys, min_size=1, max_size=8))
def test_topic_trie_matches_reference(bindings: list[tuple[str, int]], keys: list[str]) -> None:
    trie = TopicTrie()
    for pattern, destination in bindings:
        trie.add(pattern, destination)
    for key in keys:
        expected = {d for pattern, d in bindings if _reference_match(pattern, key)}
        assert trie.match(key) == expected


@settings(max_examples=30, deadline=None, database=None)
@given(
    bindings=st.lists(st.tuples(_patterns, st.integers(0, 3)), max_size=12),
    removals=st.lists(st.integers(0, 11), max_size=12),
    keys=st.lists(_keys, min_size=1, max_size=6),
)
def test_topic_trie_after_removals_matches_reference(bindings: list[tuple[str, int]], removals: list[int], keys: list[str]) -> None:
    trie = TopicTrie()
    live = list(bindings)
    for pattern, destination in bindings:
        trie.add(pattern, destination)
    for index in removals:
        if index < len(live):
            pattern, destination = live.pop(index)
            trie.remove(pattern, destination)
    for key in keys:
        expected = {d for pattern, d in live if _reference_match(pattern, key)}
        assert trie.match(key) == expected
    for pattern, destination in live:
        trie.remove(pattern, destination)
    assert not trie
    assert _node_count(trie) == 1


# --------------------------------------------------------------- headers

# The protocol layer marks integers with their wire type; matching must not care.
class Byte(int):
    type_name = "byte"


class SignedInt(int):
    type_name = "signedint"


class Long(int):
    type_name = "long"


@pytest.mark.parametrize(
    ("arguments", "headers", "expected"),
    [
        # x-match all (the default): every binding key must match
        ({"a": 1, "b": "x"}, {"a": 1, "b": "x"}, True),
        ({"a": 1, "b": "x"}, {"a": 1, "b": "x", "extra": 5}, True),
        ({"a": 1, "b": "x"}, {"a": 1}, False),
        ({"a": 1, "b": "x"}, {"a": 1, "b": "y"}, False),
        ({"x-match": "all", "a": 1}, {"a": 1}, True),
        ({"x-match": "all", "a": 1}, {}, False),
        ({"x-match": "all", "a": 1}, None, False),
        # any: one is enough
        ({"x-match": "any", "a": 1, "b": 2}, {"b": 2}, True),
        ({"x-match": "any", "a": 1, "b": 2}, {"a": 2, "b": 1}, False),
        ({"x-match": "any", "a": 1, "b": 2}, {}, False),
        ({"x-match": "any", "a": 1, "b": 2}, None, False),
    ],
)
def test_headers_all_and_any(arguments, headers, expected) -> None:
    assert headers_match(arguments, headers) is expected


@pytest.mark.parametrize(
    ("arguments", "headers", "expected"),
    [
        # all / any ignore binding keys starting with x- ...
        ({"x-match": "all", "x-foo": "bar"}, {}, True),
        ({"x-match": "all", "x-foo": "bar", "a": 1}, {"a": 1}, True),
        ({"x-match": "any", "x-foo": "bar"}, {"x-foo": "bar"}, False),
        ({"x-match": "any", "x-foo": "bar", "a": 2}, {"x-foo": "bar"}, False),
        # ... the -with-x modes compare them
        ({"x-match": "all-with-x", "x-foo": "bar"}, {}, False),
        ({"x-match": "all-with-x", "x-foo": "bar"}, {"x-foo": "bar"}, True),
        ({"x-match": "all-with-x", "x-foo": "bar", "a": 1}, {"x-foo": "bar"}, False),
        ({"x-match": "any-with-x", "x-foo": "bar", "a": 2}, {"x-foo": "bar"}, True),
        ({"x-match": "any-with-x", "x-foo": "bar"}, {"x-foo": "baz"}, False),
        # x-match itself is never a condition, even with -with-x
        ({"x-match": "all-with-x"}, {}, True),
        ({"x-match": "all-with-x"}, {"x-match": "something else"}, True),
        ({"x-match": "any-with-x"}, {"x-match": "any-with-x"}, False),
    ],
)
def test_headers_x_keys(arguments, headers, expected) -> None:
    assert headers_match(arguments, headers) is expected


@pytest.mark.parametrize(
    ("arguments", "headers", "expected"),
    [
        ({"a": None}, {"a": "anything"}, True),
        ({"a": None}, {"a": 0}, True),
        ({"a": None}, {"a": None}, True),
        ({"a": None}, {"b": 1}, False),
        ({"a": None}, {}, False),
        ({"x-match": "any", "a": None, "b": 1}, {"a": False}, True),
        # a void header value does not satisfy a valued binding
        ({"a": 1}, {"a": None}, False),
    ],
)
def test_headers_void_binding_value_means_presence(arguments, headers, expected) -> None:
    assert headers_match(arguments, headers) is expected


@pytest.mark.parametrize(
    ("binding", "header", "expected"),
    [
        (1, "1", False),
        ("1", 1, False),
        (Byte(5), Long(5), True),
        (SignedInt(-7), Byte(-7), True),
        (Long(2**40), 2**40, True),
        (True, 1, False),
        (1, True, False),
        (False, 0, False),
        (True, True, True),
        (1.5, 1.5, True),
        ("abc", "abc", True),
        ("abc", "abd", False),
        # a longstr and a byte array with the same bytes are equal in Erlang
        ("abc", b"abc", True),
        (b"\xff", b"\xff", True),
        (decimal.Decimal("1.25"), decimal.Decimal("1.25"), True),
        ({"k": 1}, {"k": 1}, True),
        ({"k": 1}, {"k": 2}, False),
        ([1, "x"], [1, "x"], True),
        ([1, "x"], ["x", 1], False),
    ],
)
def test_headers_value_comparison(binding, header, expected) -> None:
    assert headers_match({"a": binding}, {"a": header}) is expected


def test_headers_integer_equals_float_of_same_value() -> None:
    assert headers_match({"a": 1}, {"a": 1.0})
    assert headers_match({"a": 2.0}, {"a": 2})


def test_headers_integer_does_not_equal_different_float() -> None:
    assert not headers_match({"a": 1}, {"a": 1.5})


def test_headers_decimal_with_other_scale_does_not_match() -> None:
    assert not headers_match({"a": decimal.Decimal("123.45")}, {"a": decimal.Decimal("123.450")})


def test_headers_nested_table_compares_wire_types() -> None:
    assert not headers_match({"a": {"k": Byte(1)}}, {"a": {"k": SignedInt(1)}})


def test_headers_nested_array_compares_wire_types() -> None:
    assert not headers_match({"a": [Byte(1)]}, {"a": [SignedInt(1)]})


def test_headers_timestamp_equal() -> None:
    when = datetime.datetime(2023, 11, 14, 22, 13, 20)
    assert headers_match({"a": when}, {"a": when})
    assert not headers_match({"a": when}, {"a": when + datetime.timedelta(seconds=1)})


@pytest.mark.parametrize("arguments", [None, {}, {"x-match": "all"}, {"x-match": "all-with-x"}, {"x-only": 1}])
def test_headers_empty_all_binding_matches_every_message(arguments) -> None:
    assert headers_match(arguments, None)
    assert headers_match(arguments, {})
    assert headers_match(arguments, {"k": "v"})


@pytest.mark.parametrize("arguments", [{"x-match": "any"}, {"x-match": "any-with-x"}, {"x-match": "any", "x-only": 1}])
def test_headers_empty_any_binding_matches_nothing(arguments) -> None:
    assert not headers_match(arguments, None)
    assert not headers_match(arguments, {"k": "v"})


def test_x_match_mode_defaults_to_all() -> None:
    assert x_match_mode(None) == "all"
    assert x_match_mode({}) == "all"
    assert x_match_mode({"a": 1}) == "all"
    assert x_match_mode({"x-match": "any"}) == "any"


@pytest.mark.parametrize(("mode", "valid"), [("all", True), ("any", True), ("all-with-x", True), ("any-with-x", True), ("some", False), ("ALL", False), ("", False)])
def test_valid_x_match(mode: str, valid: bool) -> None:
    assert valid_x_match({"x-match": mode}) is valid
