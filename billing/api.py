"""REST API v1 for a team's billing account: its plan, limits and balance, its budgets,
and its usage export (the videos API is generation.api)."""

from django.http import Http404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import renderers, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import Perm
from accounts.selectors import request_actor_allowed
from core.api_schema import errors
from core.errors import InvalidInput

from . import budgets, usage_export
from .ledger import account_for_team
from .usage import period_start, usage_this_period


class AccountView(APIView):
    """The team this key acts for: its plan, limits and balance."""

    @extend_schema(operation_id="get_account", responses={200: OpenApiTypes.OBJECT, **errors(401, 403)})
    def get(self, request):
        actor = request_actor_allowed(request, Perm.VIEW)
        account = account_for_team(actor.team)
        plan = account.plan
        return Response(
            {
                "team": {"id": actor.team.pk, "name": actor.team.name},
                "plan": {
                    "id": plan.slug,
                    "name": plan.name,
                    "status": account.status,
                    "current_period_end": account.current_period_end,
                    "limits": {
                        "max_side": plan.max_side,
                        "max_duration_seconds": plan.max_duration_seconds,
                        "max_steps": plan.max_steps,
                        "concurrent_jobs": plan.concurrent_jobs,
                        "backlog": plan.backlog,
                        "api_access": plan.api_access,
                        "metered_overage": plan.metered_overage,
                        "max_loras": plan.max_loras,
                        "max_lora_rank": plan.max_lora_rank,
                        "max_lora_mb": plan.max_lora_mb,
                    },
                },
                "balance": {
                    "available": account.available,
                    "plan_credits": account.subscription_credits,
                    "purchased_credits": account.purchased_credits,
                    "held": account.held_credits,
                },
            }
        )


class CSVRenderer(renderers.BaseRenderer):
    """`Accept: text/csv` or `?format=csv`: the view renders the CSV text itself."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data.encode() if isinstance(data, str) else b""


USAGE_PARAMETERS = [
    OpenApiParameter("from", str, description="First UTC day, YYYY-MM-DD (default: the plan period's start)."),
    OpenApiParameter("to", str, description="Last UTC day, inclusive, YYYY-MM-DD (default: today). At most 366 days."),
    OpenApiParameter("group_by", str, enum=list(usage_export.GROUPS), description="Default: day."),
    OpenApiParameter("format", str, enum=["json", "csv"], description="Or send `Accept: text/csv`."),
]


class UsageView(APIView):
    """The team's usage over a window of UTC days, grouped by day, model, API key, member or
    pool, as JSON or CSV: credits spent (captured), released (failed, cancelled, lost: not
    spent) and held (in progress), video-seconds, and jobs by outcome; the totals reconcile
    with the credit ledger. Without `from`, `to` and `group_by` the answer also keeps this
    plan period's `by_member` and `by_api_key` lists, as before."""

    renderer_classes = [renderers.JSONRenderer, CSVRenderer]

    @extend_schema(
        operation_id="get_usage",
        parameters=USAGE_PARAMETERS,
        responses={(200, "application/json"): OpenApiTypes.OBJECT, (200, "text/csv"): OpenApiTypes.STR,
                   **errors(400, 401, 403)},
    )
    def get(self, request):
        actor = request_actor_allowed(request, Perm.VIEW)
        account = account_for_team(actor.team)
        since = period_start(account)
        today = timezone.now().date()
        params = request.query_params
        start, end = usage_export.parse_window(
            params.get("from"), params.get("to"), default_start=since.date() if since else today, default_end=today
        )
        export = usage_export.usage_export(account, start=start, end=end, group_by=usage_export.parse_group(params.get("group_by")))
        if request.accepted_renderer.format == "csv":
            name = f"framecast-usage-{export.start}-{export.end}-by-{export.group_by}.csv"
            return Response(usage_export.export_csv(export), headers={"Content-Disposition": f'attachment; filename="{name}"'})
        body = usage_export.export_data(export)
        if not any(params.get(name) for name in ("from", "to", "group_by")):
            by_member, by_key = usage_this_period(account, since=since)
            body.update({"period_start": since, "by_member": _rows(by_member, "member"), "by_api_key": _rows(by_key, "api_key")})
        return Response(body)

    def perform_content_negotiation(self, request, force=False):
        try:
            return super().perform_content_negotiation(request, force=force)
        except Http404:  # DRF's answer to an unknown ?format=
            raise InvalidInput("format must be json or csv.", field="format") from None

    def handle_exception(self, exc):
        # Errors are JSON whatever was asked for: a CSV client still reads why.
        self.request.accepted_renderer, self.request.accepted_media_type = renderers.JSONRenderer(), "application/json"
        return super().handle_exception(exc)


def _rows(usage, label):
    return [
        {label: row.label, "videos": row.jobs, "credits": row.credits, "video_seconds": round(row.video_seconds, 3)}
        for row in usage
    ]


class BudgetCreateSerializer(serializers.Serializer):
    """The request body (documentation: the rules live in billing.budgets)."""

    scope = serializers.ChoiceField(choices=["team", "member", "api_key"])
    member = serializers.CharField(required=False, help_text="With scope member: the member's email or user id.")
    api_key = serializers.CharField(required=False, help_text="With scope api_key: the key's id or its fc_xxxxxxxx prefix.")
    amount_credits = serializers.IntegerField(min_value=1, max_value=1_000_000_000)
    period = serializers.ChoiceField(choices=["day", "week", "month"], help_text="UTC calendar periods.")
    mode = serializers.ChoiceField(choices=["alert", "lock"], required=False, default="alert")
    thresholds = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=100), required=False, max_length=10,
        help_text="Percentages that alert once per period; default [50, 80, 100].",
    )
    name = serializers.CharField(required=False, max_length=100, allow_blank=True)
    webhook_url = serializers.URLField(required=False, allow_blank=True,
                                       help_text="Receives budget.threshold_reached, signed like the video events.")


class BudgetUpdateSerializer(serializers.Serializer):
    amount_credits = serializers.IntegerField(min_value=1, max_value=1_000_000_000, required=False)
    period = serializers.ChoiceField(choices=["day", "week", "month"], required=False)
    mode = serializers.ChoiceField(choices=["alert", "lock"], required=False)
    thresholds = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=100), required=False,
                                       max_length=10)
    name = serializers.CharField(required=False, max_length=100, allow_blank=True)
    webhook_url = serializers.URLField(required=False, allow_blank=True)


class BudgetList(APIView):
    """The team's budgets that the caller may see (owners and admins: all; a member: the
    team's and their own; an API key: the team's, its own and its maker's), with this
    period's spend. Owners and admins create them (API keys never change budgets)."""

    @extend_schema(operation_id="list_budgets", responses={200: OpenApiTypes.OBJECT, **errors(401, 403)})
    def get(self, request):
        actor = request_actor_allowed(request, Perm.VIEW)
        return Response({"data": [budgets.budget_data(budgets.budget_state(b)) for b in budgets.budgets_visible(actor)]})

    @extend_schema(
        operation_id="create_budget",
        request=BudgetCreateSerializer,
        responses={201: OpenApiTypes.OBJECT, **errors(400, 401, 403, 404, 409)},
    )
    def post(self, request):
        actor = request_actor_allowed(request, Perm.VIEW)
        budget = budgets.budget_create(actor=actor, data=_body(request))
        return Response(budgets.budget_data(budgets.budget_state(budget)), status=status.HTTP_201_CREATED)


class BudgetDetail(APIView):
    @extend_schema(operation_id="get_budget", responses={200: OpenApiTypes.OBJECT, **errors(401, 403, 404)})
    def get(self, request, budget_id):
        actor = request_actor_allowed(request, Perm.VIEW)
        return Response(budgets.budget_data(budgets.budget_state(budgets.budget_for_actor(actor, budget_id))))

    @extend_schema(
        operation_id="update_budget",
        request=BudgetUpdateSerializer,
        responses={200: OpenApiTypes.OBJECT, **errors(400, 401, 403, 404, 409)},
    )
    def patch(self, request, budget_id):
        actor = request_actor_allowed(request, Perm.VIEW)
        budget = budgets.budget_update(actor=actor, budget_id=budget_id, data=_body(request))
        return Response(budgets.budget_data(budgets.budget_state(budget)))

    @extend_schema(operation_id="delete_budget", responses={204: None, **errors(401, 403, 404)})
    def delete(self, request, budget_id):
        actor = request_actor_allowed(request, Perm.VIEW)
        budgets.budget_delete(actor=actor, budget_id=budget_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _body(request) -> dict:
    data = request.data
    return data.dict() if hasattr(data, "dict") else data
