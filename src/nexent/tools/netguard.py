"""Guards for server-side fetches of URLs that models or users supply (SSRF protection).

Only http and https; hosts may be limited to an allow list of domains; addresses that are not globally routable
(private, loopback, link-local, multicast, reserved, unspecified, shared, and IPv4 embedded in IPv6 such as
IPv4-mapped, 6to4, Teredo and NAT64: the address policy of `core/netpolicy.py`, shared with every outbound
connection) are refused unless private networks are allowed. `guarded_client` gives an
httpx client whose every TCP connection goes through `resolve_checked`: it resolves the host itself, checks each
address and connects to the address it checked, so DNS rebinding cannot slip a private address in between the
check and the connection. TLS still verifies (and sends SNI for) the URL's host name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpcore
import httpx

from nexent.core import netpolicy
from nexent.core.netpolicy import PUBLIC_ONLY, AddressPolicy, IPAddress, is_public_address, literal_address
from nexent.tools.registry import ToolError

__all__ = [
    "GuardedBackend",
    "IPAddress",
    "check_url",
    "guarded_client",
    "host_allowed",
    "is_public_address",
    "normalize_domain",
    "resolve_checked",
    "validate_url",
]

ALLOWED_SCHEMES = ("http", "https")
MAX_URL_LENGTH = 2048
DNS_TIMEOUT = netpolicy.DNS_TIMEOUT
ALLOW_ALL = AddressPolicy(allow_all=True)


def _policy(allow_private_network: bool) -> AddressPolicy:
    return ALLOW_ALL if allow_private_network else PUBLIC_ONLY


def normalize_domain(domain: str) -> str:
    """An allow-list entry as a lower-case ASCII host name (`*.example.com` and `.example.com` mean the same as
    `example.com`: the domain and its subdomains)."""
    value = domain.strip().lower().removeprefix("*.").lstrip(".").rstrip(".")
    if not value or any(ch in value for ch in "/:@?#[] \\"):
        raise ValueError(f"{domain!r} is not a domain name")
    try:
        host = httpx.URL(f"http://{value}/").raw_host.decode("ascii")
    except (httpx.InvalidURL, UnicodeError):
        raise ValueError(f"{domain!r} is not a domain name") from None
    if not host:
        raise ValueError(f"{domain!r} is not a domain name")
    return host


def host_allowed(host: str, allowed_domains: Sequence[str] | None) -> bool:
    """Whether `host` is one of `allowed_domains` or a subdomain of one (None: every host)."""
    if allowed_domains is None:
        return True
    host = host.lower().rstrip(".")
    return any(host == domain or host.endswith("." + domain) for domain in allowed_domains)


def validate_url(
    url: str | httpx.URL, *, allowed_domains: Sequence[str] | None = None, allow_private_network: bool = False
) -> httpx.URL:
    """Check a URL without resolving it: scheme, host, allow list, and the address when the host is a literal IP.
    Raises `ToolError` (code `url_refused` or `invalid_url`)."""
    text = str(url)
    if len(text) > MAX_URL_LENGTH:
        raise ToolError(f"The URL is longer than {MAX_URL_LENGTH} characters.", "invalid_url")
    try:
        parsed = httpx.URL(text)
    except (httpx.InvalidURL, ValueError):
        raise ToolError("The URL is not valid.", "invalid_url") from None
    if parsed.scheme not in ALLOWED_SCHEMES:
        scheme = parsed.scheme or "(none)"
        raise ToolError(f"Only http and https URLs can be fetched, not {scheme}.", "url_refused")
    host = parsed.raw_host.decode("ascii", "replace").lower().rstrip(".")
    if not host:
        raise ToolError("The URL has no host.", "invalid_url")
    if parsed.userinfo:
        raise ToolError("URLs with credentials are not fetched.", "url_refused")
    if not host_allowed(host, allowed_domains):
        raise ToolError(f"The host {host} is not in this agent's allowed domains.", "url_refused")
    literal = literal_address(host)
    if literal is not None and not allow_private_network and not is_public_address(literal):
        raise ToolError(f"The address {literal} is private, local or reserved; it is not fetched.", "url_refused")
    return parsed


async def resolve_checked(
    host: str, port: int, *, allow_private_network: bool, dns_timeout: float | None = DNS_TIMEOUT
) -> list[str]:
    """Resolve `host` and return its addresses, refusing (with `ToolError`) any that is not public unless private
    networks are allowed (the address policy of `core/netpolicy.py`)."""
    try:
        return await netpolicy.resolve_checked(host, port, _policy(allow_private_network), dns_timeout=dns_timeout)
    except netpolicy.AddressRefused:
        raise ToolError(
            f"The host {host} resolves to a private, local or reserved address; it is not fetched.", "url_refused"
        ) from None
    except TimeoutError:
        raise ToolError(f"Resolving the host {host} timed out.", "timeout") from None
    except OSError:
        raise ToolError(f"The host {host} could not be resolved.", "network_error") from None


async def check_url(
    url: str | httpx.URL, *, allowed_domains: Sequence[str] | None = None, allow_private_network: bool = False
) -> httpx.URL:
    """Everything `validate_url` checks, plus the addresses the host resolves to (used for each redirect hop)."""
    parsed = validate_url(url, allowed_domains=allowed_domains, allow_private_network=allow_private_network)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    host = parsed.raw_host.decode("ascii", "replace")
    await resolve_checked(host, port, allow_private_network=allow_private_network)
    return parsed


class GuardedBackend(netpolicy.GuardedBackend):
    """The address policy's network backend (`core/netpolicy.py`), refusing with `ToolError`s."""

    def __init__(self, *, allow_private_network: bool, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        super().__init__(_policy(allow_private_network), inner=inner)
        self.allow_private_network = allow_private_network

    async def addresses(self, host: str, port: int, timeout: float | None) -> list[str]:  # noqa: ASYNC109
        return await resolve_checked(
            host, port, allow_private_network=self.allow_private_network, dns_timeout=timeout or DNS_TIMEOUT
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        raise ToolError("Unix sockets are not fetched.", "url_refused")


class _GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport on a connection pool that uses `GuardedBackend`; never a proxy from the environment."""

    def __init__(self, *, allow_private_network: bool, max_connections: int = 4) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=max_connections,
            network_backend=GuardedBackend(allow_private_network=allow_private_network),
        )


def guarded_client(*, allow_private_network: bool, timeout: float = 15.0, **kwargs: Any) -> httpx.AsyncClient:
    """An httpx client whose connections are checked by `GuardedBackend`. It does not follow redirects: check each
    hop with `validate_url` (or `check_url`) and send it yourself."""
    return httpx.AsyncClient(
        transport=_GuardedTransport(allow_private_network=allow_private_network),
        trust_env=False,
        follow_redirects=False,
        timeout=httpx.Timeout(timeout),
        **kwargs,
    )
