"""The unit a limit counts a client by: an IPv4 address, or the /64 network of an IPv6 one.

One IPv6 host usually holds a whole /64, so counting single IPv6 addresses would let it
rotate past every per-address limit.
"""

from __future__ import annotations

import ipaddress


def client_unit(address: str) -> str:
    """``203.0.113.9`` → itself; ``2001:db8::1`` → ``2001:db8::/64``; anything else unchanged."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return address.strip()
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
