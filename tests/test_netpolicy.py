"""The address policy of outbound connections (`core/netpolicy.py`): what is public, and allow lists."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import pytest

from nexent.core.netpolicy import AddressPolicy, AddressRefused, is_public_address, resolve_checked
from nexent.engines.container import build_engines
from nexent.jobs.queue import build_queue
from tests.conftest import make_settings

NOT_PUBLIC = [
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",  # shared address space
    "169.254.169.254",  # link-local: cloud metadata
    "0.0.0.0",
    "224.0.0.1",
    "::1",
    "fe80::1",
    "fd00::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "2002:7f00:1::1",  # 6to4 around 127.0.0.1
    "2002:6440:1::1",  # 6to4 around 100.64.0.1
    "64:ff9b::a00:1",  # NAT64 around 10.0.0.1
    "64:ff9b::6440:1",  # NAT64 around 100.64.0.1
    "64:ff9b:1::1",  # local NAT64
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_non_public_addresses_are_refused_by_the_empty_policy(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert not is_public_address(ip)
    assert not AddressPolicy().permits(ip)
    assert AddressPolicy.parse(["*"]).permits(ip)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_always_permitted(address: str) -> None:
    assert AddressPolicy().permits(ipaddress.ip_address(address))


def test_allow_lists_of_hosts_addresses_and_networks() -> None:
    policy = AddressPolicy.parse([" LocalHost. ", "127.0.0.1", "10.20.0.0/16", "fd00::/8", "", "10.20.0.0/16"])
    assert policy.entries == ["127.0.0.1", "10.20.0.0/16", "fd00::/8", "localhost"]
    assert policy.permits(ipaddress.ip_address("127.0.0.1"))
    assert policy.permits(ipaddress.ip_address("::ffff:127.0.0.1"))  # IPv4-mapped: its IPv4 address decides
    assert not policy.permits(ipaddress.ip_address("127.0.0.2"))
    assert policy.permits(ipaddress.ip_address("10.20.3.4")) and not policy.permits(ipaddress.ip_address("10.21.0.1"))
    assert policy.permits(ipaddress.ip_address("fd12::1"))
    assert policy.permits(ipaddress.ip_address("127.9.9.9"), host="localhost")  # a name vouches for its answers
    assert not policy.permits(ipaddress.ip_address("127.9.9.9"), host="evil.localhost")
    assert not AddressPolicy() and policy and AddressPolicy.parse(["*"]).allow_all

    union = AddressPolicy.parse(["127.0.0.1"]) | AddressPolicy.parse(["10.0.0.0/8", "ollama"])
    assert union.entries == ["127.0.0.1", "10.0.0.0/8", "ollama"]
    assert (AddressPolicy() | policy) is policy and (policy | AddressPolicy()) is policy
    assert hash(AddressPolicy.parse(["10.0.0.0/8"])) == hash(
        AddressPolicy.parse(["10.0.0.1/8"])
    )  # pools are keyed by it

    for bad in ("http://host", "a b", "10.0.0.0/33", "host:8080", "user@host"):
        with pytest.raises(ValueError, match="not a host name"):
            AddressPolicy.parse([bad])


async def test_resolution_is_checked() -> None:
    with pytest.raises(AddressRefused) as refused:
        await resolve_checked("localhost", 80, AddressPolicy())
    assert "127.0.0.1" not in str(refused.value)  # names the host, not what it resolved to
    assert await resolve_checked("localhost", 80, AddressPolicy.parse(["localhost"])) == ["127.0.0.1"]
    assert await resolve_checked("localhost", 80, AddressPolicy.parse(["127.0.0.0/8"])) == ["127.0.0.1"]
    assert await resolve_checked("8.8.8.8", 80, AddressPolicy()) == ["8.8.8.8"]  # a literal: no lookup
    with pytest.raises(AddressRefused):
        await resolve_checked("2130706433", 80, AddressPolicy())  # 127.0.0.1 written as one number
    with pytest.raises(socket.gaierror):
        await resolve_checked("no-such-host.invalid", 80, AddressPolicy())


def test_a_wrong_entry_in_the_setting_stops_the_process(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="NEXENT_PRIVATE_ENDPOINTS_ALLOW"):
        build_engines(make_settings(tmp_path, private_endpoints_allow=["http://ollama:11434"]), queue=build_queue)
    engines = build_engines(
        make_settings(tmp_path, private_endpoints_allow=["ollama", "10.0.0.0/8"]), queue=build_queue
    )
    assert engines.private_endpoints.entries == ["10.0.0.0/8", "ollama"]
