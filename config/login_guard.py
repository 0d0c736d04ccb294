"""Brute-force protection for every login path: the login page, the admin's and the API token.

django-axes counts failed logins in the database (one store for every gunicorn process and
machine) and locks out per account and per client address, each on its own
(`AXES_LOCKOUT_PARAMETERS` in settings). The client address is `client_ip` below, the same
rule DRF's throttles use (`NUM_PROXIES`): X-Forwarded-For is believed only behind a
configured number of proxies, so a client cannot pick its own address by sending the header.

What axes stores must fit its columns, or a failed login is a 500 with nothing counted: the
address is an IP address or nothing (`client_ip`), the username at most 255 characters
(`client_username`, for `AXES_USERNAME_CALLABLE`).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """REMOTE_ADDR, or, behind `PROXY_COUNT` trusted proxies, the address the outermost of
    them saw (X-Forwarded-For read from the right, as DRF's NUM_PROXIES does)."""
    meta = getattr(request, "META", {})
    remote = meta.get("REMOTE_ADDR")
    proxies = int(getattr(settings, "PROXY_COUNT", 0))
    forwarded = meta.get("HTTP_X_FORWARDED_FOR")
    if proxies <= 0 or not forwarded:
        return remote
    hops = [h.strip() for h in forwarded.split(",") if h.strip()]
    if not hops:
        return remote
    hop = hops[-min(proxies, len(hops))]
    # Not an address (a forged header on a request that bypassed the proxies, a proxy that
    # adds a port): the column takes no such value. Such requests share one unknown address
    # rather than the proxy's, which would lock out everyone behind it.
    try:
        return str(ipaddress.ip_address(hop))
    except ValueError:
        return None


# AccessAttempt.username and AccessLog.username are varchar(255).
USERNAME_CHARS = 255


def client_username(request: HttpRequest, credentials: dict[str, Any] | None = None) -> Any:
    """The username a login attempt is counted under, as axes reads it by default (the
    credentials, else the form), cut to the column's 255 characters: no account has a longer
    name (Django's is 150), and the attempt is still counted for its address."""
    if credentials:
        username = credentials.get("username")
    else:
        data = getattr(request, "data", None) or getattr(request, "POST", {})
        username = data.get("username")
    return username[:USERNAME_CHARS] if isinstance(username, str) else username


class LoginGuardBackend(AxesStandaloneBackend):
    """Axes' check before the password backends. A call to `authenticate()` without a request
    (code, not a client: Django's test client, a management command) is no login attempt
    from outside, so it is left to the next backend instead of being refused."""

    def authenticate(self, request=None, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
