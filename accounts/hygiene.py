"""Account hygiene: email verification and log-in throttling.

(Password reset and change are Django's own views, wired in accounts/urls.py.)
"""

import hashlib
import math
import time
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from core.errors import Refusal

from .models import User

VERIFICATION_SALT = "accounts.email-verification"
# The per-address limit stops guessing one password; the per-IP limit, higher because
# offices share an address, stops one client trying many accounts.
IP_FAILURES_FACTOR = 4


# --- Email verification -----------------------------------------------------


class VerificationRefused(Refusal):
    """An email verification link that cannot be used (its status says how it fails)."""


def email_verification_send(*, user: User, base_url: str) -> None:
    """Mail `user` a link that verifies their address (after commit). The token carries the
    address too, so a link stops working if the address changes."""
    token = signing.dumps({"user": user.pk, "email": user.email}, salt=VERIFICATION_SALT)
    context = {
        "url": base_url.rstrip("/") + reverse("accounts:verify_email", kwargs={"token": token}),
        "days": settings.EMAIL_VERIFICATION_TTL_DAYS,
    }
    message = render_to_string("accounts/email/verify_email.txt", context)
    transaction.on_commit(
        lambda: send_mail("Verify your email for Framecast", message, from_email=None, recipient_list=[user.email])
    )


def signup_attempt_notify(*, user: User, base_url: str) -> None:
    """Tell the owner of `user`'s address that someone tried to sign up with it (after
    commit): the sign-up page itself answers as for a new address."""
    base = base_url.rstrip("/")
    context = {"email": user.email, "login_url": base + reverse("accounts:login"),
               "reset_url": base + reverse("accounts:password_reset")}
    message = render_to_string("accounts/email/signup_attempt.txt", context)
    transaction.on_commit(
        lambda: send_mail("Someone tried to sign up with your address", message, from_email=None, recipient_list=[user.email])
    )


def email_verify(*, token: str) -> User:
    """Mark the address in `token` verified; VerificationRefused if the link is tampered with,
    expired, or for an address the account no longer has."""
    max_age = timedelta(days=settings.EMAIL_VERIFICATION_TTL_DAYS)
    try:
        payload = signing.loads(token, salt=VERIFICATION_SALT, max_age=max_age)
    except signing.SignatureExpired:
        raise VerificationRefused(
            f"This verification link has expired (links work for {settings.EMAIL_VERIFICATION_TTL_DAYS} days). "
            "Log in and ask for a new one.",
            status=410,
        ) from None
    except signing.BadSignature:
        message = "This verification link is not valid. Check that you copied all of it."
        raise VerificationRefused(message, status=400) from None
    user = User.objects.filter(pk=payload["user"], email=payload["email"]).first()
    if user is None:
        raise VerificationRefused("This verification link is for an address this account no longer has.", status=400)
    User.objects.filter(pk=user.pk, email_verified_at=None).update(email_verified_at=timezone.now())
    user.refresh_from_db(fields=["email_verified_at"])
    return user


def email_verified_required_message(user: User) -> str | None:
    """What to tell a user who may not do something (buy credits) until they verify; None if verified."""
    if user.email_verified:
        return None
    return "Verify your email address first: we mailed you a link, and you can ask for a new one."


# --- Log-in throttling --------------------------------------------------------


def _key(kind: str, value: str) -> str:
    # Hashed: cache keys must be short and plain, addresses need not be.
    return f"login:{kind}:{hashlib.sha256(value.encode()).hexdigest()}"


def _subjects(*, email: str, ip: str | None) -> list[tuple[str, int]]:
    """(key stem, failures allowed) for each thing counted."""
    subjects = [(_key("email", email.strip().lower()), settings.LOGIN_MAX_FAILURES)]
    if ip:
        subjects.append((_key("ip", ip), settings.LOGIN_MAX_FAILURES * IP_FAILURES_FACTOR))
    return subjects


def login_lockout_seconds_left(*, email: str, ip: str | None) -> int:
    """Seconds until log-in attempts for `email` from `ip` are accepted again; 0 if they are."""
    now = time.time()
    until = max((cache.get(f"{stem}:locked") or 0 for stem, _ in _subjects(email=email, ip=ip)), default=0)
    return max(0, math.ceil(until - now))


def login_failure_record(*, email: str, ip: str | None) -> None:
    """Count a failed attempt; at the limit, lock out for LOGIN_LOCKOUT_SECONDS."""
    window = settings.LOGIN_LOCKOUT_SECONDS
    for stem, allowed in _subjects(email=email, ip=ip):
        count_key = f"{stem}:failures"
        cache.add(count_key, 0, window)  # the window starts at the first failure
        try:
            failures = cache.incr(count_key)
        except ValueError:  # expired between add and incr
            cache.set(count_key, failures := 1, window)
        if failures >= allowed:
            cache.set(f"{stem}:locked", time.time() + window, window)
            cache.delete(count_key)


def login_success_record(*, email: str) -> None:
    """A correct password clears the address's failures (not the IP's: one good account
    must not reset a client's guessing of others)."""
    cache.delete(f"{_key('email', email.strip().lower())}:failures")
