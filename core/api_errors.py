"""One JSON error shape for the whole REST API:

    {"error": {"type": "invalid_request", "message": "Width must be a multiple of 16 (got 100).",
               "field": "width", "fields": {"width": ["..."]}, "request_id": "req_..."}}
"""

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .cleaning import body_limit_refusal
from .errors import Refusal, as_refusal
from .outages import MESSAGE as UNAVAILABLE_MESSAGE
from .outages import RETRY_AFTER_SECONDS, database_unavailable
from .request_id import current_request_id

ERROR_TYPES = {
    status.HTTP_400_BAD_REQUEST: "invalid_request",
    status.HTTP_401_UNAUTHORIZED: "authentication_failed",
    status.HTTP_402_PAYMENT_REQUIRED: "payment_required",
    status.HTTP_403_FORBIDDEN: "permission_denied",
    status.HTTP_404_NOT_FOUND: "not_found",
    status.HTTP_405_METHOD_NOT_ALLOWED: "method_not_allowed",
    status.HTTP_406_NOT_ACCEPTABLE: "not_acceptable",
    status.HTTP_409_CONFLICT: "conflict",
    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: "unsupported_media_type",
    status.HTTP_422_UNPROCESSABLE_ENTITY: "unprocessable",
    status.HTTP_429_TOO_MANY_REQUESTS: "rate_limited",
    status.HTTP_503_SERVICE_UNAVAILABLE: "service_unavailable",
}


def error_response(
    status_code: int,
    message: str,
    *,
    fields: dict | None = None,
    headers=None,
    error_type: str | None = None,
    details: dict | None = None,
) -> Response:
    body = {"type": error_type or ERROR_TYPES.get(status_code, "error"), "message": message}
    if fields:
        body["field"] = next(iter(fields))
        body["fields"] = fields
    body.update(details or {})
    body["request_id"] = current_request_id.get()
    return Response({"error": body}, status=status_code, headers=headers)


def refusal_response(refusal: Refusal, *, headers=None) -> Response:
    """The REST API's answer to a domain refusal: its status, its code as `error.type`."""
    return error_response(
        refusal.status, refusal.message, fields=refusal.fields, headers=headers, error_type=refusal.code,
        details=refusal.details,
    )


def _flatten(detail) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        return {field: [str(item) for item in (items if isinstance(items, list) else [items])] for field, items in detail.items()}
    return {}


def exception_handler(exc, context):
    if database_unavailable(exc):  # an outage, or no pooled connection free in time
        return error_response(503, UNAVAILABLE_MESSAGE, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    exc = body_limit_refusal(exc) or exc
    if isinstance(exc, DjangoValidationError):
        exc = as_refusal(exc)
    if isinstance(exc, Refusal):
        return refusal_response(exc)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real bug: let Django report it as a 500
    fields = _flatten(exc.detail) if isinstance(exc, exceptions.ValidationError) else None
    if fields:
        message = next(iter(fields.values()))[0]
    else:
        detail = getattr(exc, "detail", "")
        message = str(detail[0] if isinstance(detail, list) and detail else detail) or "Error."
    headers = {key: value for key, value in response.headers.items() if key in {"WWW-Authenticate", "Retry-After", "Allow"}}
    return error_response(response.status_code, message, fields=fields, headers=headers)
