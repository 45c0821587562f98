"""Routing primitives: the topic trie and the headers-exchange matcher.

Both follow RabbitMQ 3.10 (``rabbit_exchange_type_topic`` and
``rabbit_exchange_type_headers``) wherever a client can tell the difference.
"""

from __future__ import annotations

import datetime
import decimal
from typing import Any, Hashable

from .values import value_type_name


def split_topic(key: str) -> list[str]:
    """Split a routing or binding key into words the way RabbitMQ does.

    The empty key has no words at all (so ``*`` does not match it, ``#`` does);
    ``a..b`` has an empty middle word.
    """
    if key == "":
        return []
    return key.split(".")


class _Node:
    __slots__ = ("children", "bound")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.bound: dict[Hashable, int] = {}


class TopicTrie:
    """Binding keys in a word trie; matching costs O(words), not O(bindings).

    A destination may be bound with the same pattern more than once (for
    example with different arguments); the trie keeps a reference count so
    that removing one binding leaves the others.
    """

    def __init__(self) -> None:
        self._root = _Node()

    def add(self, pattern: str, destination: Hashable) -> None:
        node = self._root
        for word in split_topic(pattern):
            child = node.children.get(word)
            if child is None:
                child = node.children[word] = _Node()
            node = child
        node.bound[destination] = node.bound.get(destination, 0) + 1

    def remove(self, pattern: str, destination: Hashable) -> None:
        words = split_topic(pattern)
        path = [self._root]
        node = self._root
        for word in words:
            node = node.children.get(word)  # type: ignore[assignment]
            if node is None:
                return
            path.append(node)
        count = node.bound.get(destination)
        if count is None:
            return
        if count > 1:
            node.bound[destination] = count - 1
            return
        del node.bound[destination]
        # prune empty branches so the trie does not grow without bound
        for depth in range(len(words), 0, -1):
            child = path[depth]
            if child.bound or child.children:
                break
            del path[depth - 1].children[words[depth - 1]]

    def match(self, routing_key: str) -> set[Hashable]:
        words = split_topic(routing_key)
        found: set[Hashable] = set()
        # iterative walk over (node, position) states; '#' may absorb 0..n words
        stack: list[tuple[_Node, int]] = [(self._root, 0)]
        seen: set[tuple[int, int]] = set()
        n = len(words)
        while stack:
            node, i = stack.pop()
            state = (id(node), i)
            if state in seen:
                continue
            seen.add(state)
            children = node.children
            hash_node = children.get("#")
            if hash_node is not None:
                for j in range(i, n + 1):
                    stack.append((hash_node, j))
            if i == n:
                if node.bound:
                    found.update(node.bound)
                continue
            word = words[i]
            child = children.get(word)
            if child is not None:
                stack.append((child, i + 1))
            star = children.get("*")
            if star is not None:
                stack.append((star, i + 1))
        return found

    def __bool__(self) -> bool:
        return bool(self._root.children or self._root.bound)


# ---------------------------------------------------------------- headers

_X_MATCH_MODES = ("all", "any", "all-with-x", "any-with-x")


def erlang_equal(a: Any, b: Any) -> bool:
    """Header value equality as RabbitMQ 3.10 decides it: Erlang's ``==`` on
    the stored terms.

    Numbers compare by value across widths and between integers and floats
    (1 == 1.0); a timestamp is an integer; longstr and byte array are both
    binaries; booleans are atoms and never equal numbers; a decimal is a
    (scale, value) pair, so 123.45 and 123.450 differ; inside tables and
    arrays every element keeps its wire type, so a byte 1 differs from a
    signedint 1 there.
    """
    a, b = _term(a), _term(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, bytes) and isinstance(b, bytes):
        return a == b
    if isinstance(a, decimal.Decimal) and isinstance(b, decimal.Decimal):
        return a.as_tuple() == b.as_tuple()
    if isinstance(a, dict) and isinstance(b, dict):
        # a table is a list of {Key, Type, Value}: order counts
        return list(a) == list(b) and all(_typed_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_typed_equal(x, y) for x, y in zip(a, b))
    if a is None or b is None:
        return a is None and b is None
    return type(a) is type(b) and a == b


def _term(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bytearray):
        return bytes(value)
    if isinstance(value, datetime.datetime):
        return int(value.timestamp())
    return value


def _typed_equal(a: Any, b: Any) -> bool:
    # nested values are compared with their wire type, as {Type, Value} terms
    return value_type_name(a) == value_type_name(b) and erlang_equal(a, b)


def x_match_mode(arguments: dict[str, Any] | None) -> str:
    """The ``x-match`` mode of a headers binding; ``all`` when absent."""
    if not arguments:
        return "all"
    mode = arguments.get("x-match", "all")
    if isinstance(mode, (bytes, bytearray)):
        mode = bytes(mode).decode("utf-8", "replace")
    return mode


def headers_match(arguments: dict[str, Any] | None, headers: dict[str, Any] | None) -> bool:
    """Does a message with ``headers`` match a binding made with ``arguments``?

    Semantics of RabbitMQ 3.10:

    * ``x-match`` = ``all`` (default) / ``any``: binding keys starting with
      ``x-`` are ignored; ``all-with-x`` / ``any-with-x`` include them.
    * A binding value of type void matches the mere presence of the key.
    * Other values match by :func:`erlang_equal`.
    * ``all`` with no (non-``x-``) keys matches every message; ``any`` with no
      keys matches none.
    """
    mode = x_match_mode(arguments)
    with_x = mode.endswith("-with-x")
    want_all = mode.startswith("all")
    headers = headers or {}
    for key, expected in (arguments or {}).items():
        if key == "x-match":
            continue
        if not with_x and key.startswith("x-"):
            continue
        if key in headers:
            actual = headers[key]
            if expected is None:
                ok = True
            else:
                ok = erlang_equal(expected, actual)
        else:
            ok = False
        if want_all and not ok:
            return False
        if not want_all and ok:
            return True
    return want_all


def valid_x_match(arguments: dict[str, Any] | None) -> bool:
    return x_match_mode(arguments) in _X_MATCH_MODES

