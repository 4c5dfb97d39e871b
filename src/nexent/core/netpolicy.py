"""The address policy of outbound connections: which addresses the server may connect to on someone's behalf.

Every connection to a URL that a tenant or a model supplies (model endpoints; web pages that agents fetch; MCP
servers and A2A agents after them) goes to a globally routable unicast address, or to a private one that the
operator allowed. `is_public_address` says what counts as public: not private, loopback, link-local, multicast,
reserved, unspecified or shared (100.64.0.0/10), and for IPv6 also not site-local, scoped, local NAT64
(64:ff9b:1::/48), nor an address that embeds a non-public IPv4 one (IPv4-mapped, 6to4, Teredo, NAT64).

`AddressPolicy` is an allow list of the private addresses that are still fine: host names (compared exactly,
whatever they resolve to: the operator vouches for them), IP addresses and CIDR networks, or `*` for every
address. `resolve_checked` resolves a host and refuses (`AddressRefused`) any address the policy does not permit;
`GuardedBackend` is an httpcore network backend that connects only to the addresses it checked, so a DNS answer
that changes between a check and the connection (DNS rebinding) cannot slip a private address in.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpcore

__all__ = [
    "AddressPolicy",
    "AddressRefused",
    "GuardedBackend",
    "IPAddress",
    "IPNetwork",
    "is_public_address",
    "literal_address",
    "resolve",
    "resolve_checked",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DNS_TIMEOUT = 10.0
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")
_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$"
)


def is_public_address(address: IPAddress) -> bool:
    """True for a globally routable unicast address; IPv4 embedded in IPv6 must be public too."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return False
        embedded: list[ipaddress.IPv4Address] = []
        if address.ipv4_mapped is not None:
            embedded.append(address.ipv4_mapped)
        if address.sixtofour is not None:
            embedded.append(address.sixtofour)
        if address.teredo is not None:
            embedded.extend(address.teredo)
        if address in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address in _NAT64_LOCAL or address.is_site_local:
            return False
        if any(not is_public_address(ip) for ip in embedded):
            return False
        if address.ipv4_mapped is not None:
            return True
    elif address in _SHARED:
        return False
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def literal_address(host: str) -> IPAddress | None:
    """The address when `host` is an IP literal (brackets allowed), else None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _normalize_host(host: str) -> str:
    return host.strip().lower().rstrip(".")


@dataclass(frozen=True)
class AddressPolicy:
    """Private addresses that outbound connections may still reach (public ones always may)."""

    allow_all: bool = False
    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AddressPolicy:
        """An allow list from its entries: `*`, a host name, an IP address or a CIDR network. Raises `ValueError`
        naming the first entry that is none of these."""
        allow_all = False
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for raw in entries:
            entry = _normalize_host(raw)
            if not entry:
                continue
            if entry == "*":
                allow_all = True
                continue
            try:
                network = ipaddress.ip_network(entry.strip("[]"), strict=False)
            except ValueError:
                if not _HOST_NAME.match(entry):
                    raise ValueError(f"{raw!r} is not a host name, IP address or CIDR network") from None
                hosts.add(entry)
                continue
            if network not in networks:
                networks.append(network)
        return cls(allow_all=allow_all, networks=tuple(networks), hosts=frozenset(hosts))

    def __or__(self, other: AddressPolicy) -> AddressPolicy:
        """Both lists: whatever either permits."""
        if not other:
            return self
        if not self:
            return other
        networks = self.networks + tuple(n for n in other.networks if n not in self.networks)
        return AddressPolicy(self.allow_all or other.allow_all, networks, self.hosts | other.hosts)

    def __bool__(self) -> bool:
        """False for the empty list (public addresses only)."""
        return self.allow_all or bool(self.networks) or bool(self.hosts)

    @property
    def entries(self) -> list[str]:
        """The list as text, in a stable order (`*` first, then networks, then host names)."""
        return (["*"] if self.allow_all else []) + [_network_text(n) for n in self.networks] + sorted(self.hosts)

    def permits_host(self, host: str) -> bool:
        """Whether the host name itself is allowed, whatever it resolves to."""
        return self.allow_all or _normalize_host(host) in self.hosts

    def permits(self, address: IPAddress, host: str | None = None) -> bool:
        """Whether a connection to `address` (resolved from `host`) is allowed."""
        if is_public_address(address) or self.allow_all:
            return True
        if host is not None and _normalize_host(host) in self.hosts:
            return True
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address.version == n.version and address in n for n in self.networks)


def _network_text(network: IPNetwork) -> str:
    full = network.prefixlen == network.max_prefixlen
    return str(network.network_address) if full else str(network)


PUBLIC_ONLY = AddressPolicy()


class AddressRefused(OSError):
    """A connection to an address that the policy does not permit. The message names the host, never the
    address it resolved to nor anything of a port."""

    def __init__(self, host: str) -> None:
        super().__init__(f"The host {host} is on a private, loopback or reserved address, which is not allowed here.")
        self.host = host


async def resolve(host: str, port: int, *, dns_timeout: float | None = DNS_TIMEOUT) -> list[IPAddress]:
    """The addresses of `host` (itself when it is an IP literal), each once. Raises `OSError` when it does not
    resolve and `TimeoutError` when the lookup takes longer than `dns_timeout`."""
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    try:
        infos = await asyncio.wait_for(
            asyncio.to_thread(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM), dns_timeout
        )
    except UnicodeError:
        raise OSError(f"The host {host} is not a valid name.") from None
    addresses: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]))
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise OSError(f"The host {host} could not be resolved.")
    return addresses


async def resolve_checked(
    host: str, port: int, policy: AddressPolicy, *, dns_timeout: float | None = DNS_TIMEOUT
) -> list[str]:
    """`resolve`, refusing with `AddressRefused` when any address is one the policy does not permit."""
    addresses = await resolve(host, port, dns_timeout=dns_timeout)
    if not policy.permits_host(host):
        for address in addresses:
            if not policy.permits(address, host):
                raise AddressRefused(host)
    return [str(address) for address in addresses]


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that connects only to addresses that `addresses` accepted (by default
    `resolve_checked` under `policy`), and never to a Unix socket."""

    def __init__(self, policy: AddressPolicy, *, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.policy = policy
        self._inner = inner or httpcore.AnyIOBackend()

    async def addresses(self, host: str, port: int, timeout: float | None) -> list[str]:  # noqa: ASYNC109
        return await resolve_checked(host, port, self.policy, dns_timeout=timeout or DNS_TIMEOUT)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self.addresses(host, port, timeout)
        except AddressRefused:
            raise
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"Resolving the host {host} timed out.") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from None
        error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused("(a Unix socket)")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
