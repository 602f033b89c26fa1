"""Addresses typed in by customers (a shop's site): one that httpx cannot use is a form error, and in
production one that leads into our own network (loopback, private, link-local, …) is refused — checked
when the shop is connected and again before every call, since its DNS may change in between."""

import ipaddress
import re
import socket

import httpx

HOST_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?")


def parsed(url: str) -> httpx.URL | None:
    """The URL if it is an http(s) address with a usable host name, else None."""
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return None
    try:
        parsed_url = httpx.URL(url)
        host = parsed_url.raw_host.decode("ascii").lower()
    except (httpx.InvalidURL, UnicodeError, ValueError):
        return None
    if parsed_url.scheme not in ("http", "https") or not host:
        return None
    if not (HOST_NAME.fullmatch(host) or _ip(host)):
        return None
    return parsed_url


def _ip(host: str):
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _public(address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def is_public(url: str) -> bool:
    """Every address the URL's host resolves to is a public one. A name that does not resolve passes:
    the call itself then fails as unreachable."""
    parsed_url = parsed(url)
    if parsed_url is None:
        return False
    host = parsed_url.raw_host.decode("ascii")
    literal = _ip(host)
    if literal is not None:
        return _public(literal)
    try:
        found = socket.getaddrinfo(host, parsed_url.port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return True
    return all(_public(ipaddress.ip_address(info[4][0].split("%")[0])) for info in found)
