"""The staff dashboard (/staff/): thin views over ops.metrics, ops.selectors, ops.services
and ops.exports, and the moderation queue over safety.moderation. Anyone but an active
staff user in the browser gets 404, as if the pages did not exist
(accounts.permissions.staff_required)."""

import hmac
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.http import JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.models import Team
from accounts.permissions import staff_required
from generation import pools
from safety import moderation, suspensions
from safety.models import ModerationDecision

from . import charts, exports, metrics, scaling, selectors, services
from .forms import CreditAdjustForm, ModerationDecisionForm, ModerationSuspensionForm, SuspensionForm
from .models import AuditEntry, StorageSweep


@staff_required
@require_GET
def money(request):
    figures = metrics.money()
    return render(request, "ops/money.html", {
        "section": "money", "m": figures,
        "daily_chart": charts.daily_chart(figures.days), "model_chart": charts.model_chart(figures.by_model),
        "budget_refusals": selectors.budget_refusals(now=figures.now),
    })


@staff_required
@require_GET
def operations(request):
    figures = metrics.operations()
    return render(request, "ops/operations.html", {
        "section": "operations", "o": figures, "hourly_chart": charts.hourly_chart(figures.jobs_per_hour),
        "sweep": StorageSweep.objects.first(),
    })


@staff_required
@require_GET
def customers(request):
    query = request.GET.get("q", "")[:200]
    return render(request, "ops/customers.html", {
        "section": "customers", "query": query, "teams": selectors.teams_search(query), "limit": selectors.SEARCH_LIMIT,
    })


def _team_page(request, team, *, credit_form=None, suspend_form=None, status=200):
    return render(request, "ops/team.html", {
        "section": "customers", "d": selectors.team_detail(team),
        "credit_form": credit_form or CreditAdjustForm(), "suspend_form": suspend_form or SuspensionForm(),
        "suspension": suspensions.active_suspension(team),
    }, status=status)


@staff_required
@require_GET
def team(request, team_id):
    return _team_page(request, get_object_or_404(Team, pk=team_id))


@staff_required
@require_POST
def team_credits(request, team_id):
    target = get_object_or_404(Team, pk=team_id)
    form = CreditAdjustForm(request.POST)
    if form.is_valid():
        try:
            entry = services.staff_adjust_credits(
                staff=request.user, team=target, amount=form.cleaned_data["amount"], reason=form.cleaned_data["reason"]
            )
        except services.StaffActionRefused as refusal:
            form.add_error(refusal.field, refusal.message)
        else:
            messages.success(request, f"{entry.amount:+,} credits for {target}; balance now {entry.balance_after:,}.")
            return redirect("ops:team", team_id=target.pk)
    return _team_page(request, target, credit_form=form, status=400)


def _suspension_action(request, team_id, action, done: str):
    target = get_object_or_404(Team, pk=team_id)
    form = SuspensionForm(request.POST)
    if form.is_valid():
        try:
            action(staff=request.user, team=target, reason=form.cleaned_data["reason"])
        except services.StaffActionRefused as refusal:
            form.add_error(refusal.field, refusal.message)
        else:
            messages.success(request, f"{target} {done}.")
            return redirect("ops:team", team_id=target.pk)
    return _team_page(request, target, suspend_form=form, status=400)


@staff_required
@require_POST
def team_suspend(request, team_id):
    return _suspension_action(request, team_id, services.staff_suspend_team, "is suspended")


@staff_required
@require_POST
def team_restore(request, team_id):
    return _suspension_action(request, team_id, services.staff_restore_team, "is restored")


@staff_required
@require_GET
def exports_page(request):
    today = timezone.now().date()
    return render(request, "ops/exports.html", {
        "section": "exports", "start": (today - timedelta(days=29)).isoformat(), "end": today.isoformat(),
    })


def _export(request, kind: str, stream, action: str):
    try:
        first, last = exports.parse_range(request.GET.get("from"), request.GET.get("to"))
    except exports.BadRange as error:
        return render(request, "ops/exports.html", {
            "section": "exports", "error": error.message, "error_field": error.field,
            "start": request.GET.get("from", ""), "end": request.GET.get("to", ""),
        }, status=400)
    services.audit_record(staff=request.user, action=action, details={"from": first.isoformat(), "to": last.isoformat()})
    response = StreamingHttpResponse(stream(first, last), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="framecast-{kind}-{first}-to-{last}.csv"'
    return response


@staff_required
@require_GET
def export_jobs(request):
    return _export(request, "jobs", exports.jobs_csv, AuditEntry.Action.EXPORT_JOBS)


@staff_required
@require_GET
def export_ledger(request):
    return _export(request, "ledger", exports.ledger_csv, AuditEntry.Action.EXPORT_LEDGER)


@staff_required
@require_GET
def audit(request):
    return render(request, "ops/audit.html", {"section": "audit", "entries": AuditEntry.objects.all()[:200]})


@staff_required
@require_GET
def moderation_queue(request):
    return render(request, "ops/moderation.html", {
        "flagged": moderation.flagged_queue()[:200],
        "reports": moderation.report_queue()[:200],
        "suspensions": moderation.suspended_teams(),
        "recent_refusals": ModerationDecision.objects.filter(outcome=ModerationDecision.Outcome.REFUSE)
        .select_related("team").order_by("-created_at")[:50],
    })


@staff_required
@require_POST
def moderation_decide(request):
    form = ModerationDecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "That decision could not be read; please try again.")
        return redirect("ops:moderation")
    data = form.cleaned_data
    item = get_object_or_404(services.MODERATION_ITEMS[data["kind"]], pk=data["item"])
    try:
        services.staff_moderation_decide(staff=request.user, item=item, decision=data["decision"], note=data["note"])
    except services.StaffActionRefused as refusal:
        messages.error(request, refusal.message)
    else:
        messages.success(request, "Decision recorded.")
    return redirect("ops:moderation")


@staff_required
@require_POST
def moderation_suspension(request):
    form = ModerationSuspensionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "That request could not be read; please try again.")
        return redirect("ops:moderation")
    team = get_object_or_404(Team, pk=form.cleaned_data["team"])
    restore = form.cleaned_data["action"] == "restore"
    action = services.staff_restore_team if restore else services.staff_suspend_team
    try:
        action(staff=request.user, team=team, reason=form.cleaned_data["reason"])
    except services.StaffActionRefused as refusal:
        messages.error(request, refusal.message)
    else:
        messages.success(request, f"{team.name} can generate videos again." if restore else f"{team.name}'s video generation is suspended.")
    return redirect("ops:moderation")


@require_GET
def pool_scaling(request, pool):
    """GET /ops/scaling/<pool>: the pool's desired worker count and its signals, for an
    autoscaler (KEDA's metrics-api scaler reads `desired_workers`). Bearer
    FRAMECAST_SCALING_TOKEN; refused while that is unset."""
    token = settings.FRAMECAST_SCALING_TOKEN
    if not token:
        return JsonResponse({"error": "Scaling signals are off: set FRAMECAST_SCALING_TOKEN."}, status=403)
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), token.encode()):
        response = JsonResponse({"error": "Send Authorization: Bearer <FRAMECAST_SCALING_TOKEN>."}, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="framecast-scaling"'
        return response
    found = pools.get_pool(pool)
    if found is None:
        return JsonResponse({"error": f"No pool named {pool!r} in the pools file."}, status=404)
    return JsonResponse(scaling.pool_scaling(found))
