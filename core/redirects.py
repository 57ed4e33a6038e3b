"""Where a page may send the browser next: only ever to this site."""

from django.utils.http import url_has_allowed_host_and_scheme


def safe_next(request, default: str | None = None) -> str | None:
    """The `next` URL (from the form, else the query) if it stays on this site, else `default`.
    Django's check refuses other hosts, protocol-relative `//host`, `/\\host` (browsers read
    the backslash as a slash), other schemes, and http when this request came over https."""
    url = request.POST.get("next") or request.GET.get("next")
    if url and url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return url
    return default
