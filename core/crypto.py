"""Secrets the platform must read back (webhook signing secrets) stored encrypted.

Keys come from FRAMECAST_ENCRYPTION_KEYS: comma-separated Fernet keys (32 url-safe base64
bytes each; `python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`).
The first key encrypts; every key decrypts, so a key is rotated by putting a new one first,
running `manage.py rotate_encryption_key` (re-encrypts every stored value with it), then
dropping the old one. Without the setting, one key is derived from SECRET_KEY, so `make
run` needs nothing; production sets its own (a deploy check warns otherwise).

Stored values look like `fc1:<Fernet token>`; anything else is a value written before
encryption existed, read as it is until a migration or rotation encrypts it.
"""

import base64
import hashlib
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

PREFIX = "fc1:"


@cache
def _keys(configured: tuple[str, ...], secret_key: str) -> MultiFernet:
    if not configured:
        derived = base64.urlsafe_b64encode(hashlib.sha256(f"framecast-encryption:{secret_key}".encode()).digest())
        return MultiFernet([Fernet(derived)])
    try:
        return MultiFernet([Fernet(key.encode()) for key in configured])
    except ValueError as error:
        raise ImproperlyConfigured(f"FRAMECAST_ENCRYPTION_KEYS holds a key that is not a Fernet key: {error}") from None


def fernet() -> MultiFernet:
    return _keys(tuple(settings.FRAMECAST_ENCRYPTION_KEYS), settings.SECRET_KEY)


def encrypt(plaintext: str) -> str:
    return PREFIX + fernet().encrypt(plaintext.encode()).decode()


def decrypt(stored: str) -> str:
    if not stored.startswith(PREFIX):
        return stored  # written before encryption; encrypted by the next save or rotation
    try:
        return fernet().decrypt(stored.removeprefix(PREFIX).encode()).decode()
    except InvalidToken:
        raise ImproperlyConfigured(
            "A stored secret cannot be decrypted with FRAMECAST_ENCRYPTION_KEYS: was a key dropped before "
            "`manage.py rotate_encryption_key` ran?"
        ) from None


def reencrypt(stored: str) -> str:
    """The same secret under the current first key."""
    return encrypt(decrypt(stored))


class EncryptedTextField(models.TextField):
    """Plain text in Python, `fc1:<token>` in the database."""

    def from_db_value(self, value, expression, connection):
        return None if value is None else decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value.startswith(PREFIX):
            return value
        return encrypt(value)
