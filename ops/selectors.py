"""What the staff pages read about customers. Read-only: nothing here creates or renews a
billing account (billing.ledger.account_for_team would)."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db.models import Q, Sum
from django.utils import timezone

from accounts.models import Membership, Team
from billing import budgets
from billing.models import BillingAccount, Budget, BudgetRefusals, CreditEntry, Payment
from core.text import whole_number
from generation.models import Job

from .models import AuditEntry

SEARCH_LIMIT = 50


def teams_search(query: str) -> list[Team]:
    """Teams whose name, id, or a member's email matches `query` (case-insensitive)."""
    query = query.strip()
    if not query:
        return []
    match = Q(name__icontains=query) | Q(pk__in=Membership.objects.filter(user__email__icontains=query).values("team_id"))
    team_id = whole_number(query)
    if team_id is not None and team_id < 2**63:  # beyond bigint no team has that id
        match |= Q(pk=team_id)
    return list(Team.objects.filter(match).select_related("billing__plan", "personal_owner").order_by("name", "pk")[:SEARCH_LIMIT])


@dataclass
class TeamDetail:
    team: Team
    account: BillingAccount | None
    members: list[Membership]
    entries: list[CreditEntry]
    jobs: list[Job]
    gpu_cost_30d: Decimal
    jobs_30d: int
    credits_spent_30d: int
    paid_total: Decimal
    payments: list[Payment]
    audit: list[AuditEntry]
    budgets: list  # billing.budgets.BudgetState, with `refusals_30d` on each budget


def team_detail(team: Team, *, now: datetime | None = None, limit: int = 50) -> TeamDetail:
    now = now or timezone.now()
    since = now - timedelta(days=30)
    account = BillingAccount.objects.filter(team=team).select_related("plan").first()
    recent_jobs = Job.objects.filter(team=team, created_at__gte=since)
    spend = recent_jobs.aggregate(cost=Sum("cost_usd"))
    entries, payments, spent, paid = [], [], 0, Decimal(0)
    if account is not None:
        entries = list(CreditEntry.objects.filter(account=account).order_by("-created_at", "-pk")[:limit])
        spent = -(CreditEntry.objects.filter(account=account, kind=CreditEntry.Kind.CAPTURE, created_at__gte=since)
                  .aggregate(n=Sum("held_delta"))["n"] or 0)
        payments = list(Payment.objects.filter(account=account).order_by("-paid_at")[:limit])
        paid = Decimal(Payment.objects.filter(account=account).aggregate(n=Sum("amount_cents"))["n"] or 0) / 100
    return TeamDetail(
        team=team,
        account=account,
        members=list(Membership.objects.filter(team=team).select_related("user").order_by("pk")),
        entries=entries,
        jobs=list(Job.objects.filter(team=team).order_by("-created_at")[:limit]),
        gpu_cost_30d=spend["cost"] or Decimal(0),
        jobs_30d=recent_jobs.count(),
        credits_spent_30d=spent,
        paid_total=paid,
        payments=payments,
        audit=list(AuditEntry.objects.filter(target_type="team", target_id=str(team.pk))[:limit]),
        budgets=_budget_states(account, now=now),
    )


def _budget_states(account: BillingAccount | None, *, now: datetime) -> list:
    if account is None:
        return []
    since = (now - timedelta(days=29)).date()
    team_budgets = Budget.objects.filter(account=account).select_related("member", "api_key").annotate(
        refusals_30d=Sum("refusals__count", filter=Q(refusals__day__gte=since))
    )
    return [budgets.budget_state(budget, now=now) for budget in team_budgets]


@dataclass
class BudgetRefusalRow:
    budget: Budget
    today: int
    week: int
    month: int


def budget_refusals(*, now: datetime | None = None, limit: int = 20) -> list[BudgetRefusalRow]:
    """The lock budgets that refused most submissions over 30 UTC days (the money page)."""
    today = (now or timezone.now()).astimezone(UTC).date()
    rows = (
        BudgetRefusals.objects.filter(day__gte=today - timedelta(days=29))
        .values("budget_id")
        .annotate(
            month=Sum("count"),
            week=Sum("count", filter=Q(day__gte=today - timedelta(days=6))),
            today=Sum("count", filter=Q(day=today)),
        )
        .order_by("-month", "budget_id")[:limit]
    )
    found = {b.pk: b for b in Budget.objects.filter(pk__in=[r["budget_id"] for r in rows])
             .select_related("account__team", "member", "api_key")}
    return [BudgetRefusalRow(found[r["budget_id"]], r["today"] or 0, r["week"] or 0, r["month"] or 0) for r in rows]
