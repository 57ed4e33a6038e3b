"""`Idempotency-Key` for the POSTs that create jobs (native create and remix, the OpenAI
create and remix): a retry with the same key and body within 24 h gets the first answer
back and creates nothing; the same key with another body is refused.

The answer is recorded whatever it was (a refusal too), inside the transaction that made
it, so a twin request that arrives meanwhile waits on the key's row and then replays it.
"""

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.response import Response

from core.errors import Refusal, as_refusal

from .models import IdempotencyRecord

WINDOW = timedelta(hours=24)
MAX_KEY_LENGTH = 255
HEADER = "Idempotency-Key"


def _request_hash(data) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def respond_once(request, *, team, respond: Callable[[], Response], refused: Callable[[Refusal], Response]) -> Response:
    """`respond()` once per (team, key) when the request carries a key, else every time.
    A Refusal raised by `respond` (or by the key itself) becomes `refused(refusal)`: the
    caller's error shape (native or OpenAI)."""
    key = request.headers.get(HEADER, "").strip()
    if not key:
        return _answer(respond, refused)
    if len(key) > MAX_KEY_LENGTH:
        return refused(Refusal(f"{HEADER} may be at most {MAX_KEY_LENGTH} characters.", field=HEADER))
    body = request.data if isinstance(request.data, dict) else {}
    digest = _request_hash({name: value for name, value in body.items() if not hasattr(value, "read")})
    IdempotencyRecord.objects.filter(team=team, key=key, created_at__lt=timezone.now() - WINDOW).delete()
    try:
        with transaction.atomic():
            # The insert takes the key: a concurrent twin blocks here until this commits.
            record = IdempotencyRecord.objects.create(team=team, key=key, request_hash=digest)
            response = _answer(respond, refused)
            record.response_status = response.status_code
            record.response_body = response.data
            record.save(update_fields=["response_status", "response_body"])
            return response
    except IntegrityError:
        record = IdempotencyRecord.objects.get(team=team, key=key)
    if record.request_hash != digest:
        return refused(
            Refusal(
                f"This {HEADER} was used with a different request body; use a new key for a new request.",
                status=422,
                code="idempotency_key_reused",
            )
        )
    return Response(record.response_body, status=record.response_status, headers={"Idempotent-Replayed": "true"})


def _answer(respond, refused) -> Response:
    try:
        return respond()
    except Refusal as refusal:
        return refused(refusal)
    except ValidationError as error:
        return refused(as_refusal(error))
