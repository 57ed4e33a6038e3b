"""API keys: made by admins, shown once, stored only as a hash, revocable, metered.

A key looks like `fc_<prefix><secret>`: the 8-character prefix is visible in lists and finds
the row; the whole key is hashed with SHA-256 (it is 256 bits of randomness, so a slow
password hash buys nothing) and compared in constant time."""

import hashlib
import hmac
import secrets
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db.models import F, FloatField, Q, Sum
from django.db.models.functions import Cast
from django.http import Http404
from django.utils import timezone

from .models import ApiKey, Membership
from .permissions import Perm, require

KEY_PREFIX = "fc_"
PREFIX_LENGTH = 8
MAX_KEY_NAME = 100


class InvalidApiKey(Exception):
    """The presented key is unknown, revoked or expired (the message says which)."""


def _hash(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def apikey_create(*, membership: Membership, name: str, expires_at: datetime | None = None) -> tuple[ApiKey, str]:
    """Returns the key row and the full secret, which is never available again."""
    require(membership, Perm.MANAGE_KEYS)
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Key name is required, e.g. “production server”."})
    if len(name) > MAX_KEY_NAME:
        raise ValidationError({"name": f"Key name may be at most {MAX_KEY_NAME} characters."})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "Expiry must be in the future."})
    while True:
        prefix = secrets.token_hex(PREFIX_LENGTH // 2)
        if not ApiKey.objects.filter(prefix=prefix).exists():
            break
    raw_key = f"{KEY_PREFIX}{prefix}{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        team=membership.team,
        created_by=membership.user,
        name=name,
        prefix=prefix,
        secret_hash=_hash(raw_key),
        expires_at=expires_at,
    )
    return key, raw_key


def apikey_revoke(*, membership: Membership, key_id: int) -> ApiKey:
    require(membership, Perm.MANAGE_KEYS)
    key = ApiKey.objects.filter(pk=key_id, team_id=membership.team_id).first()
    if key is None:
        raise Http404("No such API key.")
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key


def apikey_authenticate(raw_key: str) -> ApiKey:
    """The active key matching `raw_key`, with this request counted against it."""
    if not raw_key.startswith(KEY_PREFIX) or len(raw_key) <= len(KEY_PREFIX) + PREFIX_LENGTH:
        raise InvalidApiKey("Invalid API key.")
    prefix = raw_key[len(KEY_PREFIX) : len(KEY_PREFIX) + PREFIX_LENGTH]
    key = ApiKey.objects.select_related("team", "created_by").filter(prefix=prefix).first()
    if key is None or not hmac.compare_digest(key.secret_hash, _hash(raw_key)):
        raise InvalidApiKey("Invalid API key.")
    if key.revoked_at is not None:
        raise InvalidApiKey("This API key has been revoked.")
    if key.expires_at is not None and key.expires_at <= timezone.now():
        raise InvalidApiKey("This API key has expired.")
    now = timezone.now()
    ApiKey.objects.filter(pk=key.pk).update(request_count=F("request_count") + 1, last_used_at=now)
    key.last_used_at = now
    return key


def apikeys_with_usage(team):
    """The team's keys with the video-seconds generated through each (succeeded jobs)."""
    seconds = Cast(F("jobs__num_frames"), FloatField()) / Cast(F("jobs__fps"), FloatField())
    return (
        ApiKey.objects.filter(team=team)
        .select_related("created_by")
        .annotate(video_seconds=Sum(seconds, filter=Q(jobs__state="succeeded"), default=0.0))
    )
