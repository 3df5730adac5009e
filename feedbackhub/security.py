"""Security headers, the client's address, and login brute-force protection.

Django's SecurityMiddleware already sends HSTS (when TLS), nosniff, the referrer
policy and COOP; XFrameOptionsMiddleware denies framing. This module adds the
Content-Security-Policy (only our own scripts and styles, so no inline code or
inline event handlers run) and a per-username+address login failure counter.
"""

from __future__ import annotations

import hashlib
import math
import time

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache

# Swagger UI (drf-spectacular's template) carries one small inline <style> block; its
# scripts are served separately (SpectacularSwaggerSplitView), so scripts stay 'self' only.
RELAXED_STYLE_PREFIXES = ("/api/docs/",)
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"


class SecurityHeadersMiddleware:
    """Adds Content-Security-Policy (FEEDBACKHUB_CSP) and Permissions-Policy to every response,
    including static files and error pages, unless a view set its own."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.header = (
            "Content-Security-Policy-Report-Only" if settings.FEEDBACKHUB_CSP_REPORT_ONLY else "Content-Security-Policy"
        )
        self.policy = settings.FEEDBACKHUB_CSP
        self.relaxed_policy = self.policy.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")

    def __call__(self, request):
        response = self.get_response(request)
        if self.policy and self.header not in response:
            relaxed = request.path.startswith(RELAXED_STYLE_PREFIXES)
            response[self.header] = self.relaxed_policy if relaxed else self.policy
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response


def client_ip(request) -> str:
    """The caller's address: REMOTE_ADDR, or the entry FEEDBACKHUB_TRUSTED_PROXIES hops back in
    X-Forwarded-For when the app runs behind that many proxies (others could be forged)."""
    proxies = settings.FEEDBACKHUB_TRUSTED_PROXIES
    if proxies > 0:
        hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        if hops:
            return hops[-min(proxies, len(hops))]
    return request.META.get("REMOTE_ADDR", "") or "unknown"


# --- login brute-force protection ------------------------------------------------------------


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _pair_key(username: str, ip: str) -> str:
    return f"login-fail:{_digest(username.strip().lower())}:{_digest(ip)}"


def _ip_key(ip: str) -> str:
    return f"login-fail-ip:{_digest(ip)}"


def _bump(key: str) -> int:
    """Count one failure in a window that starts with the first failure. The count is an atomic
    add + incr (exact across app servers sharing Redis), its start a second key set once."""
    period = settings.FEEDBACKHUB_LOGIN_LOCKOUT_SECONDS
    cache.add(f"{key}:start", time.time(), timeout=period)
    cache.add(key, 0, timeout=period)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=period)
        return 1


def login_lockout_seconds(username: str, ip: str) -> int:
    """Seconds until `username` may try again from `ip` (0 when not locked out)."""
    now = time.time()
    limits = {
        _pair_key(username, ip): settings.FEEDBACKHUB_LOGIN_MAX_FAILURES,
        _ip_key(ip): settings.FEEDBACKHUB_LOGIN_MAX_FAILURES_PER_IP,
    }
    stored = cache.get_many([*limits, *(f"{key}:start" for key in limits)])
    for key, limit in limits.items():
        remaining = settings.FEEDBACKHUB_LOGIN_LOCKOUT_SECONDS - (now - stored.get(f"{key}:start", now))
        if stored.get(key, 0) >= limit and remaining > 0:
            return math.ceil(remaining)
    return 0


def record_login_failure(username: str, ip: str) -> None:
    _bump(_pair_key(username, ip))
    _bump(_ip_key(ip))


def clear_login_failures(username: str, ip: str) -> None:
    key = _pair_key(username, ip)
    cache.delete_many([key, f"{key}:start"])


class GuardedAuthenticationForm(AuthenticationForm):
    """Django's login form, refusing a username+address pair after repeated failures.

    A locked-out attempt is refused before the password is checked, so it reveals
    nothing about the password; `locked_for` holds the seconds left (the view answers 429).
    """

    error_messages = {
        **AuthenticationForm.error_messages,
        "locked": "Too many failed sign-in attempts. Try again in %(minutes)s minute(s).",
    }

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        self.locked_for = 0

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        ip = client_ip(self.request) if self.request is not None else "unknown"
        self.locked_for = login_lockout_seconds(username, ip)
        if self.locked_for:
            raise forms.ValidationError(
                self.error_messages["locked"], code="locked", params={"minutes": math.ceil(self.locked_for / 60)}
            )
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            record_login_failure(username, ip)
            raise
        if self.user_cache is not None:  # a form without a password authenticates nobody
            clear_login_failures(username, ip)
        return cleaned
