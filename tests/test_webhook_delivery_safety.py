"""Webhook deliveries cannot be steered inside our network, their signing secrets are
encrypted at rest, and the test suite itself never sends one off this machine."""

import ipaddress
import socket

import pytest
from django.core.management import call_command
from django.db import connection
from standardwebhooks.webhooks import Webhook

from accounts.models import Team
from core import crypto
from generation import services
from generation.models import WebhookDelivery
from generation.webhooks import webhook_addresses, webhook_deliver

from .conftest import SMALL_REQUEST
from .test_customer_webhooks import api, receiver  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db


@pytest.fixture
def lookups(monkeypatch):
    """The host names this test looks up (the real resolver still answers; numeric
    addresses, which need no lookup, are not counted)."""
    asked: list[str] = []
    real = socket.getaddrinfo

    def counting(host, *args, **kwargs):
        try:
            ipaddress.ip_address(host)
        except ValueError:
            asked.append(host)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", counting)
    return asked


def test_a_public_webhook_host_is_never_looked_up_or_sent_to_from_the_tests(alice, api, lookups):  # noqa: F811
    created = api({**SMALL_REQUEST, "webhook_url": "https://hooks.framecast-customer.example/video"})
    assert created.status_code == 201, created.content
    services.job_cancel(created.json()["id"])
    attempt = webhook_deliver(WebhookDelivery.objects.get(event_type="video.cancelled").id)
    assert attempt.status_code is None and "loopback only" in attempt.error
    assert lookups == []


def test_a_delivery_connects_to_the_address_it_checked(alice, api, receiver, lookups, settings):  # noqa: F811
    """One lookup per attempt, and the connection goes to its answer: a host whose DNS
    changes between the check and the connection cannot reach another address."""
    url = receiver.url.replace("127.0.0.1", "localhost")
    created = api({**SMALL_REQUEST, "webhook_url": url}).json()
    services.job_cancel(created["id"])
    lookups.clear()
    attempt = webhook_deliver(WebhookDelivery.objects.get(event_type="video.cancelled").id)
    assert attempt.status_code == 204, attempt.error
    assert lookups == ["localhost"]
    headers, _ = receiver.requests[-1]
    assert headers["host"] == f"localhost:{receiver.server.server_port}"


def test_private_addresses_are_refused_at_every_attempt(settings):
    settings.FRAMECAST_WEBHOOKS_ALLOW_PRIVATE = False
    for url in ("http://127.0.0.1:9/hook", "http://[::1]/hook", "http://10.0.0.8/hook", "http://localhost/hook"):
        with pytest.raises(Exception, match="public address"):
            webhook_addresses(url)


def test_signing_secrets_are_encrypted_at_rest_and_still_sign(alice, api, receiver):  # noqa: F811
    team = alice.personal_team
    with connection.cursor() as cursor:
        cursor.execute("SELECT webhook_secret FROM accounts_team WHERE id = %s", [team.pk])
        stored = cursor.fetchone()[0]
    assert stored.startswith("fc1:") and team.webhook_secret not in stored
    created = api({**SMALL_REQUEST, "webhook_url": receiver.url}).json()
    services.job_cancel(created["id"])
    webhook_deliver(WebhookDelivery.objects.get(event_type="video.cancelled").id)
    headers, body = receiver.requests[-1]
    assert Webhook(Team.objects.get(pk=team.pk).webhook_secret).verify(body, headers)["type"] == "video.cancelled"


def test_the_encryption_key_rotates_without_losing_a_secret(alice, settings):
    from cryptography.fernet import Fernet

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FRAMECAST_ENCRYPTION_KEYS = [old]
    team = alice.personal_team
    team.save(update_fields=["webhook_secret"])
    secret = Team.objects.get(pk=team.pk).webhook_secret
    settings.FRAMECAST_ENCRYPTION_KEYS = [new, old]
    call_command("rotate_encryption_key", stdout=open("/dev/null", "w"))
    settings.FRAMECAST_ENCRYPTION_KEYS = [new]
    assert Team.objects.get(pk=team.pk).webhook_secret == secret
    settings.FRAMECAST_ENCRYPTION_KEYS = [old]
    with pytest.raises(Exception, match="cannot be decrypted"):
        Team.objects.get(pk=team.pk)
    assert crypto.decrypt("whsec_plain") == "whsec_plain", "values from before encryption still read"
