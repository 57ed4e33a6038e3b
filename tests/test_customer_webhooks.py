"""Webhooks to customers: signed the Standard Webhooks way, retried, never redirected."""

import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from accounts.api_keys import apikey_create
from accounts.models import Membership
from generation import services
from generation.models import Job, WebhookDelivery
from generation.webhooks import RETRY_DELAYS, webhook_deliver, webhooks_retry_due

from .conftest import SMALL_REQUEST, on_plan

pytestmark = pytest.mark.django_db


class Receiver:
    """A customer's endpoint on 127.0.0.1 that answers with the statuses it is told to."""

    def __init__(self):
        self.requests: list[tuple[dict, bytes]] = []
        self.answers: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.answers.pop(0) if receiver.answers else 204
                self.send_response(status)
                if status in (301, 302, 307):
                    self.send_header("Location", f"http://127.0.0.1:{self.server.server_port}/moved")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/framecast"

    def close(self):
        self.server.shutdown()


@pytest.fixture
def receiver(settings):
    settings.FRAMECAST_WEBHOOKS_ALLOW_PRIVATE = True  # the receiver is on 127.0.0.1
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def api(alice, client):
    on_plan(alice.personal_team, "creator")
    _, secret = apikey_create(membership=Membership.objects.get(user=alice), name="ci")

    def post(body):
        return client.post("/api/v1/videos", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {secret}")

    return post


def test_start_and_end_are_posted_signed_and_verify_with_the_documented_recipe(
    alice, api, receiver, django_capture_on_commit_callbacks
):
    created = api({**SMALL_REQUEST, "webhook_url": receiver.url, "metadata": {"order": 42}}).json()
    job = services.job_start(created["id"], worker="w")
    services.job_fail(job.id, reason="boom")
    for delivery in WebhookDelivery.objects.order_by("created_at"):
        webhook_deliver(delivery.id)
    secret = alice.personal_team.webhook_secret
    events = [Webhook(secret).verify(body, headers) for headers, body in receiver.requests]
    assert [event["type"] for event in events] == ["video.started", "video.failed"]
    assert events[-1]["data"]["id"] == created["id"]
    assert events[-1]["data"]["metadata"] == {"order": 42}
    assert events[-1]["data"]["error"] == "boom"
    headers, body = receiver.requests[-1]
    assert headers["webhook-id"].startswith("msg_")
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b"boom", b"fine"), headers)


def test_a_failing_receiver_is_retried_with_backoff_and_every_attempt_is_kept(alice, api, receiver):
    receiver.answers = [500, 503]
    created = api({**SMALL_REQUEST, "webhook_url": receiver.url}).json()
    services.job_cancel(created["id"])
    delivery = WebhookDelivery.objects.get(event_type="video.cancelled")
    webhook_deliver(delivery.id)
    delivery.refresh_from_db()
    assert delivery.delivered_at is None and delivery.attempts == 1
    assert delivery.next_attempt_at > timezone.now() + timedelta(seconds=RETRY_DELAYS[0] - 2)
    assert webhooks_retry_due() == 0  # not due yet
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    webhooks_retry_due()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    webhooks_retry_due()
    delivery.refresh_from_db()
    assert delivery.delivered_at is not None and delivery.attempts == 3
    assert [a.status_code for a in delivery.attempt_log.all()] == [500, 503, 204]
    assert len({headers["webhook-id"] for headers, _ in receiver.requests}) == 1  # same message, retried


def test_redirects_are_not_followed(alice, api, receiver):
    receiver.answers = [302]
    created = api({**SMALL_REQUEST, "webhook_url": receiver.url}).json()
    services.job_cancel(created["id"])
    attempt = webhook_deliver(WebhookDelivery.objects.get().id)
    assert attempt.status_code == 302 and "not followed" in attempt.error
    assert len(receiver.requests) == 1  # nothing was sent to the new location


def test_a_delivery_is_given_up_after_the_last_retry(alice, api, receiver):
    receiver.answers = [500] * (len(RETRY_DELAYS) + 1)
    created = api({**SMALL_REQUEST, "webhook_url": receiver.url}).json()
    services.job_cancel(created["id"])
    delivery = WebhookDelivery.objects.get()
    for _ in range(len(RETRY_DELAYS) + 1):
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        webhook_deliver(delivery.id)
    delivery.refresh_from_db()
    assert delivery.attempts == len(RETRY_DELAYS) + 1 and delivery.next_attempt_at is None
    assert sum(RETRY_DELAYS) > 24 * 3600  # retried for more than a day


@pytest.mark.parametrize(
    "url, message",
    [
        ("ftp://example.com/hook", "Webhook URL must be an http:// or https:// address."),
        ("http://127.0.0.1:9/hook", "Webhook URL must be a public address, not a private or local one."),
        ("http://10.1.2.3/hook", "Webhook URL must be a public address, not a private or local one."),
    ],
)
def test_webhook_urls_must_be_public_http(api, url, message):
    response = api({**SMALL_REQUEST, "webhook_url": url})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == message and response.json()["error"]["field"] == "webhook_url"
    assert not Job.objects.exists()


def test_no_webhook_url_no_deliveries(api):
    created = api(SMALL_REQUEST).json()
    services.job_cancel(created["id"])
    assert not WebhookDelivery.objects.exists()


def test_the_team_sees_its_secret_and_deliveries_and_admins_rotate_it(alice, api, receiver):
    from .conftest import client_for, page_text

    receiver.answers = [500]
    created = api({**SMALL_REQUEST, "webhook_url": receiver.url}).json()
    services.job_cancel(created["id"])
    webhook_deliver(WebhookDelivery.objects.get().id)
    client = client_for(alice)
    page = page_text(client.get("/team/keys/"))
    old_secret = alice.personal_team.webhook_secret
    assert old_secret in page
    assert "video.cancelled" in page and "500" in page and "retry at" in page
    client.post("/team/webhook-secret/rotate/")
    alice.personal_team.refresh_from_db()
    assert alice.personal_team.webhook_secret != old_secret
    assert alice.personal_team.webhook_secret.startswith("whsec_")


def test_the_keys_page_title_is_plain_text(alice):
    from .conftest import client_for

    page = client_for(alice).get("/team/keys/").content.decode()
    title = page.split("<title>", 1)[1].split("</title>", 1)[0]
    assert title == f"API keys · {alice.personal_team.name} · Framecast".replace("'", "&#x27;")
    assert page.count("<h2>Webhooks</h2>") == 1


def test_the_address_is_checked_again_at_delivery(alice, api, receiver, settings):
    """A host that resolved to a public address at submission may point inside later."""
    created = api({**SMALL_REQUEST, "webhook_url": receiver.url}).json()
    services.job_cancel(created["id"])
    settings.FRAMECAST_WEBHOOKS_ALLOW_PRIVATE = False  # as in production: 127.0.0.1 is refused
    attempt = webhook_deliver(WebhookDelivery.objects.get().id)
    assert attempt.status_code is None and "must be a public address" in attempt.error
    assert receiver.requests == []
