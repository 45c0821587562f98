"""Opening listening sockets: several addresses, one port number."""

from __future__ import annotations

import errno
import logging

import trio

logger = logging.getLogger("wiregate.gateway")

#: Addresses used when no host, or ``localhost``, is configured.
LOOPBACK_ADDRESSES = ("127.0.0.1", "::1")

# How often a kernel-picked IPv4 port is given up because the same number is
# taken on IPv6, before giving up altogether.
_SHARED_PORT_ATTEMPTS = 8

_BACKLOG = 128

# The host has no such address family or address (e.g. IPv6 disabled): a
# loopback listener on that family is skipped rather than fatal.
_UNAVAILABLE = {errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT}


class ListenError(OSError):
    """A listening socket could not be opened.

    Attributes:
        address: The ``(host, port)`` that failed.
    """

    def __init__(self, address: tuple[str, int], cause: OSError) -> None:
        super().__init__(cause.errno, f"cannot listen on {format_endpoint(address)}: {cause.strerror or cause}")
        self.address = address

    def __str__(self) -> str:
        return str(self.strerror)


def format_endpoint(address: tuple[str, int]) -> str:
    """Return ``host:port``, with brackets around an IPv6 host.

    Args:
        address: A ``(host, port)`` pair.

    Returns:
        The text form used in logs and the ready line.
    """
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def open_listeners(host: str | None, port: int) -> list[trio.SocketListener]:
    """Listen on every address of ``host`` with one shared port number.

    ``None`` and ``"localhost"`` mean ``127.0.0.1`` and ``::1``; a loopback
    family the host does not support is skipped with a log line.  Any other
    host is resolved and every address it resolves to is used.  With port 0
    the kernel picks the port for the first address and the others bind the
    same number; when that number is taken on another address, all sockets
    are closed and the whole set is tried again.

    Args:
        host: Host name or address, or ``None``.
        port: Port number, 0 for kernel-picked.

    Returns:
        One listener per address, all accepting on the same port.

    Raises:
        ListenError: An address could not be bound (e.g. the port is in use),
            or no address could be used at all.
    """
    loopback = host is None or host == "localhost"
    addresses = list(LOOPBACK_ADDRESSES) if loopback else await _resolve(host, port)
    attempts = _SHARED_PORT_ATTEMPTS if port == 0 and len(addresses) > 1 else 1
    attempt = 1
    while True:
        try:
            return await _bind_all(addresses, port, skip_unavailable=loopback)
        except ListenError as exc:
            if attempt >= attempts or exc.errno != errno.EADDRINUSE:
                raise
            attempt += 1


async def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = await trio.socket.getaddrinfo(
            host, None, type=trio.socket.SOCK_STREAM, flags=trio.socket.AI_PASSIVE
        )
    except OSError as exc:
        raise ListenError((host, port), exc) from exc
    unique: dict[str, None] = {}
    for _family, _type, _proto, _name, sockaddr in infos:
        unique[str(sockaddr[0])] = None
    return list(unique)


async def _bind_all(addresses: list[str], port: int, *, skip_unavailable: bool) -> list[trio.SocketListener]:
    listeners: list[trio.SocketListener] = []
    try:
        for address in addresses:
            # The first socket fixes the port number for the others.
            wanted = listeners[0].socket.getsockname()[1] if listeners else port
            try:
                sock = await _listening_socket(address, wanted)
            except OSError as exc:
                if skip_unavailable and exc.errno in _UNAVAILABLE:
                    logger.info("not listening on %s: %s", address, exc.strerror)
                    continue
                raise ListenError((address, wanted), exc) from exc
            listeners.append(trio.SocketListener(sock))
    except BaseException:
        for listener in listeners:
            listener.socket.close()
        raise
    if not listeners:
        raise ListenError((", ".join(addresses), port), OSError(errno.EADDRNOTAVAIL, "no usable address"))
    return listeners


async def _listening_socket(address: str, port: int) -> trio.socket.SocketType:
    family = trio.socket.AF_INET6 if ":" in address else trio.socket.AF_INET
    sock = trio.socket.socket(family, trio.socket.SOCK_STREAM)
    try:
        # Restarting the server must not wait for TIME_WAIT sockets to expire.
        sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_REUSEADDR, 1)
        if family == trio.socket.AF_INET6:
            # "::" means IPv6 only, so that "0.0.0.0" can be bound beside it.
            sock.setsockopt(trio.socket.IPPROTO_IPV6, trio.socket.IPV6_V6ONLY, 1)
        await sock.bind((address, port))
        sock.listen(_BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock
