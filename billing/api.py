"""REST API v1 for a team's billing account: its plan, limits and balance, and this
period's usage (the videos API is generation.api)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import Perm
from accounts.selectors import request_actor_allowed
from core.api_schema import errors

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


class UsageView(APIView):
    """This period's credits and video-seconds, per member and per API key."""

    @extend_schema(operation_id="get_usage", responses={200: OpenApiTypes.OBJECT, **errors(401, 403)})
    def get(self, request):
        actor = request_actor_allowed(request, Perm.VIEW)
        account = account_for_team(actor.team)
        since = period_start(account)
        by_member, by_key = usage_this_period(account, since=since)

        def rows(usage, label):
            return [
                {label: row.label, "videos": row.jobs, "credits": row.credits, "video_seconds": round(row.video_seconds, 3)}
                for row in usage
            ]

        return Response(
            {"period_start": since, "by_member": rows(by_member, "member"), "by_api_key": rows(by_key, "api_key")}
        )
