"""OpenAPI descriptions that the code cannot infer on its own."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import serializers


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An API key: `fc_` followed by 50 characters."}


class ErrorBody(serializers.Serializer):
    type = serializers.CharField(help_text="Machine-readable, e.g. invalid_request, insufficient_credits.")
    message = serializers.CharField(help_text="What went wrong and how to fix it, for people.")
    field = serializers.CharField(required=False, help_text="The request field at fault, when there is one.")
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False)
    budget = serializers.DictField(
        required=False, help_text="With `budget_exceeded`: the budget the job would pass (GET /budgets/{id}'s object) "
        "and the job's `price_credits`.",
    )
    request_id = serializers.CharField(help_text="Quote it when you contact support; also in X-Request-ID.")


class Error(serializers.Serializer):
    error = ErrorBody()


def errors(*statuses: int) -> dict:
    """The error responses of an operation; every call may also hit its rate limit (429)."""
    return {status: Error for status in {*statuses, 429}}
