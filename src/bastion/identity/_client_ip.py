"""The client address of a request (security S6): the peer, unless it is a trusted proxy,
then the address that proxy names. What the rate limiter counts by and sessions record."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import TypeAlias

__all__ = ["ClientIP", "check_subnet", "client_ip", "normalize_ip"]

_IPAddress: TypeAlias = IPv4Address | IPv6Address
_IPNetwork: TypeAlias = IPv4Network | IPv6Network


def _parse_ip(text: str) -> _IPAddress | None:
    """An address from a header or socket: `1.2.3.4`, `1.2.3.4:80`, `[::1]:80`, `::1`."""
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        port = text[end + 1 :] if end > 0 else "?"
        if port and not (port[:1] == ":" and port[1:].isascii() and port[1:].isdigit()):
            return None
        text = text[1:end]
    elif text.count(":") == 1:
        text, _, port = text.partition(":")
        if not (port.isascii() and port.isdigit()):
            return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:192.0.2.1 is 192.0.2.1
    return address


def _bucket(address: _IPAddress, ipv6_subnet: int) -> str:
    """IPv4 as is; IPv6 as its /`ipv6_subnet` network, written out in full as better-auth
    does (`2001:0db8:0000:0000:0000:0000:0000:0000`): one host owns a whole /64, so counting
    single addresses would hand it 2^64 buckets."""
    if isinstance(address, IPv4Address):
        return str(address)
    drop = 128 - ipv6_subnet
    return IPv6Address(int(address) >> drop << drop).exploded


def check_subnet(ipv6_subnet: int) -> None:
    if isinstance(ipv6_subnet, bool) or not 1 <= ipv6_subnet <= 128:
        raise ValueError(f"ipv6_subnet must be a prefix length from 1 to 128, not {ipv6_subnet!r}")


def normalize_ip(text: str, *, ipv6_subnet: int = 64) -> str | None:
    """The rate-limit bucket of an address (see `_bucket`); None if it is not an address."""
    address = _parse_ip(text)
    return None if address is None else _bucket(address, ipv6_subnet)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Every value of a header, joined with commas, as a proxy that adds a second
    X-Forwarded-For line instead of appending to the first means it."""
    getlist = getattr(headers, "getlist", None)  # Starlette's Headers, multidicts
    if callable(getlist):
        values = [str(v) for v in getlist(name)]
        return ",".join(values) if values else None
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    found = [v for k, v in headers.items() if k.lower() == lowered]
    return ",".join(found) if found else None


@dataclass(frozen=True, slots=True)
class ClientIP:
    """How to find a request's client address. Build it once; call it per request.

    Security item S6. The direct peer (the TCP connection's address) is the client, unless
    it is one of `trusted_proxies` (addresses or CIDR ranges): then the client is the
    right-most address in the first `ip_headers` header that is not itself a trusted proxy.

    This is stricter than better-auth, which without `trustedProxies` believes a single-value
    X-Forwarded-For from anyone, and maps a multi-hop one to no address. Both are bad for a
    limiter: a client that connects directly can write any X-Forwarded-For, so a fresh made-up
    address per request would give it a fresh bucket per request (unlimited password guesses);
    and "no address" puts every proxied client into one shared bucket that one attacker can
    fill for everyone. The peer address cannot be forged, and a forwarded header is only as
    honest as the hop that wrote it, so only headers delivered by a trusted proxy count, and
    only the part of the chain that trusted proxies appended: whatever the client wrote
    itself is on the left of the first untrusted address.

    Returns None when IP tracking is disabled, when the peer is unknown or not an address,
    or when a trusted proxy forwarded no usable address (a malformed hop fails closed; so
    does a chain of trusted proxies only). IPv6 addresses are bucketed by /`ipv6_subnet`.
    """

    ip_headers: Sequence[str] = ("x-forwarded-for",)
    trusted_proxies: Sequence[str] = ()
    disable_ip_tracking: bool = False
    ipv6_subnet: int = 64
    _networks: tuple[_IPNetwork, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.ip_headers, str) or isinstance(self.trusted_proxies, str):
            raise TypeError("ip_headers and trusted_proxies are sequences of strings")
        check_subnet(self.ipv6_subnet)
        networks: list[_IPNetwork] = []
        for entry in self.trusted_proxies:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                raise ValueError(f"trusted proxy {entry!r} is not an address or range") from None
        object.__setattr__(self, "ip_headers", tuple(h.lower() for h in self.ip_headers))
        object.__setattr__(self, "trusted_proxies", tuple(self.trusted_proxies))
        object.__setattr__(self, "_networks", tuple(networks))

    def __call__(self, headers: Mapping[str, str], peer: str | None) -> str | None:
        if self.disable_ip_tracking or peer is None:
            return None
        address = _parse_ip(peer)
        if address is None:
            return None
        if not self._trusted(address):
            return _bucket(address, self.ipv6_subnet)
        for name in self.ip_headers:
            value = _header(headers, name)
            if value is not None:
                found = self._from_chain(value)
                if found is not None:
                    return found
        return None

    def _trusted(self, address: _IPAddress) -> bool:
        return any(address in network for network in self._networks)

    def _from_chain(self, value: str) -> str | None:
        for hop in reversed([h for h in value.split(",") if h.strip()]):
            address = _parse_ip(hop)
            if address is None:
                return None
            if not self._trusted(address):
                return _bucket(address, self.ipv6_subnet)
        return None


def client_ip(
    headers: Mapping[str, str],
    peer: str | None,
    *,
    ip_headers: Sequence[str] = ("x-forwarded-for",),
    trusted_proxies: Sequence[str] = (),
    disable_ip_tracking: bool = False,
    ipv6_subnet: int = 64,
) -> str | None:
    """`ClientIP(...)(headers, peer)` in one call; build a ClientIP to parse the options once."""
    resolve = ClientIP(
        ip_headers=ip_headers,
        trusted_proxies=trusted_proxies,
        disable_ip_tracking=disable_ip_tracking,
        ipv6_subnet=ipv6_subnet,
    )
    return resolve(headers, peer)
