"""The broker: users, virtual hosts and the connections that use them."""

from __future__ import annotations

from typing import Any

from .vhost import VHost


class Broker:
    """All state of one wiregate server, shared by every protocol front end."""

    def __init__(self) -> None:
        self.vhosts: dict[str, VHost] = {"/": VHost("/")}
        #: user name -> password; RabbitMQ's default user guest/guest
        self.users: dict[str, str] = {"guest": "guest"}
        #: open client connections of every protocol (for listings)
        self.connections: set[Any] = set()
        self.blocked = False

    def authenticate(self, username: str, password: str) -> bool:
        return self.users.get(username) == password

    def add_vhost(self, name: str) -> VHost:
        vhost = self.vhosts.get(name)
        if vhost is None:
            vhost = self.vhosts[name] = VHost(name)
        return vhost

    def reset(self) -> None:
        """Forget every entity: a fresh broker for the next test."""
        self.vhosts = {"/": VHost("/")}
