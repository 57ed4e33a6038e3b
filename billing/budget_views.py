"""The Budgets and Usage pages: thin views over billing.budgets and billing.usage_export.
Every member sees the budgets that apply to them; owners and admins change them."""

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import Membership
from accounts.permissions import Actor, Perm, has_perm, require
from accounts.selectors import request_membership
from core.charts import Bar, Chart, Label, scale
from core.errors import Refusal

from . import budgets, usage_export
from .ledger import account_for_team
from .models import Budget

CHART_DAYS = 30


def _actor(request, perm: Perm = Perm.VIEW) -> Actor:
    membership = request_membership(request)
    require(membership, perm)
    return Actor(team=membership.team, user=membership.user, membership=membership)


def _budget_rows(actor: Actor) -> list:
    return [budgets.budget_state(budget) for budget in budgets.budgets_visible(actor)]


@login_required
@require_http_methods(["GET", "POST"])
def budgets_page(request):
    """The budgets that apply to the viewer, with this period's spend; owners and admins
    also get the form that makes one (a POST here)."""
    actor = _actor(request)
    can_manage = has_perm(actor, Perm.MANAGE_BUDGETS)
    error, status, posted = "", 200, {}
    if request.method == "POST":
        require(actor, Perm.MANAGE_BUDGETS)
        posted = request.POST.dict()
        try:
            budget = budgets.budget_create(actor=actor, data=_form_data(posted))
        except Refusal as refusal:
            error, status = refusal.message, refusal.status
        else:
            messages.success(request, f"{budgets.describe(budget)[0].upper()}{budgets.describe(budget)[1:]} is set.")
            return redirect("billing:budgets")
    context = {
        "team": actor.team,
        "states": _budget_rows(actor),
        "can_manage": can_manage,
        "members": Membership.objects.filter(team=actor.team).select_related("user").order_by("user__email")
        if can_manage
        else [],
        "keys": actor.team.api_keys.filter(revoked_at=None) if can_manage else [],
        "error": error,
        "posted": posted,
        "default_thresholds": ", ".join(str(t) for t in budgets.DEFAULT_THRESHOLDS),
        "scopes": Budget.Scope.choices,
        "periods": Budget.Period.choices,
        "modes": Budget.Mode.choices,
    }
    return render(request, "billing/budgets.html", context, status=status)


def _form_data(posted: dict) -> dict:
    """A form's fields as the service reads them (empty selects are absent)."""
    data = {name: value for name, value in posted.items() if name != "csrfmiddlewaretoken"}
    for name in ("member", "api_key"):
        if not data.get(name):
            data.pop(name, None)
    return data


@login_required
@require_POST
def budget_change(request, budget_id: int):
    actor = _actor(request, Perm.MANAGE_BUDGETS)
    try:
        budget = budgets.budget_update(actor=actor, budget_id=budget_id, data=_form_data(request.POST.dict()))
    except Refusal as refusal:
        messages.error(request, refusal.message)
    else:
        messages.success(request, f"{budgets.describe(budget)[0].upper()}{budgets.describe(budget)[1:]} is changed.")
    return redirect("billing:budgets")


@login_required
@require_POST
def budget_remove(request, budget_id: int):
    actor = _actor(request, Perm.MANAGE_BUDGETS)
    budgets.budget_delete(actor=actor, budget_id=budget_id)
    messages.success(request, "The budget is deleted.")
    return redirect("billing:budgets")


def daily_chart(rows: list[usage_export.Row], *, start, days: int, width: int = 720, height: int = 200) -> Chart:
    """Credits spent per UTC day (one bar a day, oldest first), days without spend included."""
    by_day = {row.group: row for row in rows}
    plot_top, plot_bottom, left = 18, height - 24, 8
    series = [(start + timedelta(days=index), by_day.get(start + timedelta(days=index))) for index in range(days)]
    top = scale([row.credits_spent for _, row in series if row])
    slot = (width - left) / days
    bars, labels = [], [Label(left, 12, f"max {int(top):,} credits/day", "start")]
    for index, (day, row) in enumerate(series):
        spent = row.credits_spent if row else 0
        h = spent / top * (plot_bottom - plot_top)
        x = left + index * slot
        bars.append(Bar(round(x + 1, 1), round(plot_bottom - h, 1), round(max(slot - 2, 1), 1), round(h, 1), "bar-jobs",
                        f"{day:%b %d}: {spent:,} credits spent"))
        if index == 0:
            labels.append(Label(round(x, 1), height - 6, f"{day:%b %d}", "start"))
        elif index == days - 1:
            labels.append(Label(round(x + slot, 1), height - 6, f"{day:%b %d}", "end"))
        elif index % 7 == 0 and index < days - 3:
            labels.append(Label(round(x + slot / 2, 1), height - 6, f"{day:%b %d}"))
    return Chart(width, height, bars, labels, [("bar-jobs", "Credits spent (UTC days)")],
                 f"Credits spent per day over the last {days} days")


@login_required
@require_GET
def usage_page(request):
    """This period's spend against each budget, the last 30 days' spend per day (a chart)
    and per API key, and the CSV export."""
    actor = _actor(request)
    account = account_for_team(actor.team)
    today = timezone.now().date()
    start = today - timedelta(days=CHART_DAYS - 1)
    by_day = usage_export.usage_export(account, start=start, end=today, group_by="day")
    by_key = usage_export.usage_export(account, start=start, end=today, group_by="api_key")
    api = reverse("api:usage")
    window = f"from={start}&to={today}"
    return render(request, "billing/usage.html", {
        "team": actor.team,
        "states": _budget_rows(actor),
        "chart": daily_chart(by_day.rows, start=start, days=CHART_DAYS),
        "by_day": by_day,
        "by_key": by_key,
        "csv_links": [(group.replace("_", " "), f"{api}?{window}&group_by={group}&format=csv") for group in usage_export.GROUPS],
        "can_manage": has_perm(actor, Perm.MANAGE_BUDGETS),
    })

