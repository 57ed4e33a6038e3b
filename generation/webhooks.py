"""Webhooks to customers, in the Standard Webhooks form (the scheme OpenAI's and Replicate's
APIs use): POST the job as JSON to its webhook_url with `webhook-id`, `webhook-timestamp`
and `webhook-signature: v1,<base64 HMAC-SHA256(secret, "id.timestamp.body")>` under the
team's secret. Failed deliveries are retried with backoff for more than a day; redirects are
not followed (a moved endpoint must be updated, not guessed); every attempt is recorded.

Receiving side, in Python (the `standardwebhooks` package):

    from standardwebhooks.webhooks import Webhook
    event = Webhook(team_secret).verify(request_body_bytes, request_headers)  # raises if forged
"""

import base64
import hashlib
import hmac
import http.client
import json
import logging
import socket
import ssl
import time
import uuid
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.webhook_urls import validate_webhook_url, webhook_addresses  # noqa: F401 - also used from here

from . import payloads
from .models import Job, WebhookAttempt, WebhookDelivery

logger = logging.getLogger(__name__)

# Delay before each retry (after attempt 1, 2, ...): 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h
# — about 27 hours in all, then the delivery is given up.
RETRY_DELAYS = [5, 300, 1800, 7200, 18000, 36000, 36000]
TIMEOUT_SECONDS = 10
DELIVER_TASK = "generation.deliver_webhook"


def webhooks_queue() -> str:
    return f"{settings.FRAMECAST_QUEUE_PREFIX}webhooks"


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to `address` while the request names the URL's host (Host header)."""

    def __init__(self, host, port, *, address: str, **kwargs):
        super().__init__(host, port, **kwargs)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to `address`, with the certificate checked against the URL's host name (SNI)."""

    def __init__(self, host, port, *, address: str, **kwargs):
        super().__init__(host, port, context=ssl.create_default_context(), **kwargs)
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _post(url: str, *, address: str, body: bytes, headers: dict) -> int:
    """POST to `url` through `address`; the status (redirects are answers, not followed)."""
    parts = urlsplit(url)
    kind = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    connection = kind(parts.hostname, parts.port, address=address, timeout=TIMEOUT_SECONDS)
    try:
        path = parts.path or "/"
        connection.request("POST", f"{path}?{parts.query}" if parts.query else path, body=body, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def webhook_enqueue(job: Job, event_type: str, payload: dict, *, version: str) -> WebhookDelivery:
    """Record an event for the job's webhook (in the caller's transaction) and send it once
    that commits. `version`: the payload's (generation.payloads.WEBHOOK_PAYLOAD_VERSION)."""
    return _event_enqueue(team_id=job.team_id, job=job, url=job.webhook_url, event_type=event_type, payload=payload,
                          version=version)


def budget_alert_enqueue(alert) -> WebhookDelivery:
    """`budget.threshold_reached` to the budget's webhook_url (a billing.BudgetAlert that has
    just fired), signed and retried like the video events."""
    budget = alert.budget
    return _event_enqueue(
        team_id=budget.account.team_id, job=None, url=budget.webhook_url, event_type="budget.threshold_reached",
        payload=payloads.budget_alert_data(alert), version=payloads.WEBHOOK_PAYLOAD_VERSION,
    )


def _event_enqueue(*, team_id, job: Job | None, url: str, event_type: str, payload: dict, version: str) -> WebhookDelivery:
    delivery = WebhookDelivery.objects.create(
        id=f"msg_{uuid.uuid4().hex}",
        team_id=team_id,
        job=job,
        event_type=event_type,
        url=url,
        payload={"type": event_type, "timestamp": timezone.now().isoformat(), "api_version": version, "data": payload},
        payload_version=version,
        next_attempt_at=timezone.now(),
    )
    transaction.on_commit(lambda: _send_soon(delivery.id))
    return delivery


def _send_soon(delivery_id: str) -> None:
    from celery import current_app

    try:
        current_app.send_task(DELIVER_TASK, args=[delivery_id], queue=webhooks_queue())
    except Exception:  # noqa: BLE001 - the periodic retry picks it up
        logger.warning("Could not queue webhook %s; the retry task will send it", delivery_id, exc_info=True)


def webhook_deliver(delivery_id: str) -> WebhookAttempt | None:
    """Make one attempt, if one is due; schedule the next on failure."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .select_related("team")
            .filter(pk=delivery_id, delivered_at=None, next_attempt_at__lte=timezone.now())
            .first()
        )
        if delivery is None:
            return None  # delivered, given up, not yet due, or being sent by another worker
        body = json.dumps(delivery.payload, separators=(",", ":")).encode()
        started = time.monotonic()
        try:
            # Again at each attempt: the host's DNS may point somewhere else by now.
            addresses = webhook_addresses(delivery.url)
        except ValidationError as refusal:
            return _record_attempt(delivery, status_code=None, error=" ".join(refusal.messages), started=started)
        if not addresses:
            return _record_attempt(
                delivery, status_code=None, error="Not sent: this deployment delivers webhooks to loopback only.",
                started=started,
            )
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Framecast-Webhooks/1",
            "webhook-id": delivery.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(delivery.team.webhook_secret, delivery.id, timestamp, body),
        }
        status_code, error = None, ""
        try:
            status_code = _post(delivery.url, address=addresses[0], body=body, headers=headers)
            if 300 <= status_code < 400:
                error = "Redirected (not followed): update the webhook URL to where it moved."
        except (OSError, http.client.HTTPException) as failure:
            error = str(failure)[:500] or type(failure).__name__
        return _record_attempt(delivery, status_code=status_code, error=error, started=started)


def _record_attempt(delivery: WebhookDelivery, *, status_code: int | None, error: str, started: float) -> WebhookAttempt:
    """Log the attempt; on failure schedule the next one, or give up after the last."""
    attempt = WebhookAttempt.objects.create(
        delivery=delivery,
        status_code=status_code,
        error=error[:500],
        duration_ms=int((time.monotonic() - started) * 1000),
    )
    delivery.attempts += 1
    if status_code is not None and 200 <= status_code < 300 and not error:
        delivery.delivered_at, delivery.next_attempt_at = timezone.now(), None
    elif delivery.attempts <= len(RETRY_DELAYS):
        delivery.next_attempt_at = timezone.now() + timedelta(seconds=RETRY_DELAYS[delivery.attempts - 1])
    else:
        delivery.next_attempt_at = None  # given up; the attempts stay visible
    delivery.save(update_fields=["attempts", "delivered_at", "next_attempt_at"])
    return attempt


def webhooks_retry_due() -> int:
    """Periodic: send every delivery whose next attempt is due."""
    due = WebhookDelivery.objects.filter(delivered_at=None, next_attempt_at__lte=timezone.now()).values_list(
        "pk", flat=True
    )
    count = 0
    for delivery_id in list(due[:500]):
        if webhook_deliver(delivery_id) is not None:
            count += 1
    return count
