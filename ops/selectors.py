"""What the staff pages read about customers. Read-only: nothing here creates or renews a
billing account (billing.ledger.account_for_team would)."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Q, Sum
from django.utils import timezone

from accounts.models import Membership, Team
from billing.models import BillingAccount, CreditEntry, Payment
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
    )
