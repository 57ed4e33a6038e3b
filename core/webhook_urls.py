"""Which URLs a customer webhook may be sent to: http(s), and never an address inside our own
network. Plain rules on a URL, shared by the video webhooks (generation.webhooks) and the
budget alerts (billing.budgets)."""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError


def validate_webhook_url(url: str) -> str:
    """http(s) only, and — unless FRAMECAST_WEBHOOKS_ALLOW_PRIVATE — never an address inside
    our own network (a webhook must not become a way to reach internal services)."""
    webhook_addresses(url)
    return url


def webhook_addresses(url: str) -> list[str]:
    """The addresses `url` may be delivered to now, checked: the delivery connects to one of
    these, not to whatever a second DNS lookup says (a rebinding host could answer with a
    private address between the check and the connection). Raises ValidationError.

    With FRAMECAST_WEBHOOKS_LOOPBACK_ONLY (the test suite), host names other than
    localhost are never looked up: their list is empty and nothing is sent to them."""
    # A URI is ASCII with no spaces or controls (RFC 3986, the schema's `format: uri`).
    if not url.isascii() or any(char.isspace() or not char.isprintable() for char in url):
        raise ValidationError({"webhook_url": "Webhook URL must be ASCII without spaces: write an international host "
                                              "name in its xn-- form and percent-encode the rest."})
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        parts = None
    if parts is None or parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValidationError({"webhook_url": "Webhook URL must be an http:// or https:// address."})
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ValidationError({"webhook_url": "Webhook URL has a port that is not a number from 1 to 65535."}) from None
    literal = _ip_literal(parts.hostname)
    loopback_only = settings.FRAMECAST_WEBHOOKS_LOOPBACK_ONLY
    if literal is not None:
        addresses = [str(literal)]
    elif loopback_only and parts.hostname != "localhost":
        return []  # never looked up
    else:
        try:
            addresses = sorted({info[4][0] for info in socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)})
        except (socket.gaierror, UnicodeError):
            raise ValidationError({"webhook_url": f"Webhook host {parts.hostname!r} does not resolve."}) from None
    if not settings.FRAMECAST_WEBHOOKS_ALLOW_PRIVATE and any(
        not ipaddress.ip_address(address.split("%")[0]).is_global for address in addresses
    ):
        raise ValidationError({"webhook_url": "Webhook URL must be a public address, not a private or local one."})
    if loopback_only and not all(ipaddress.ip_address(address.split("%")[0]).is_loopback for address in addresses):
        return []
    return addresses


def _ip_literal(host: str):
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
