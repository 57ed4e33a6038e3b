"""The verifier page (anyone), video reports (anyone with a share link) and the staff
moderation queue (staff only: everyone else gets 404)."""

from functools import wraps

from django.contrib import messages
from django.core.cache import cache
from django.db import transaction
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import Team
from accounts.selectors import request_membership
from generation.sharing import job_for_share_token
from ops.models import AuditEntry
from ops.services import StaffActionRefused, audit_record, staff_restore_team, staff_suspend_team

from . import moderation
from .forms import DecisionForm, ReportForm, SuspensionForm, VerifyForm
from .models import ModerationDecision, VideoReport
from .provenance import VerifyError, max_upload_bytes, too_large_message, verification_json, verify_share_link, verify_upload

# Anonymous verifications per address and hour (decoding video costs CPU).
ANONYMOUS_VERIFY_PER_HOUR = 30


def _client_address(request) -> str:
    return request.META.get("REMOTE_ADDR", "unknown")


def _over_anonymous_limit(request) -> bool:
    if request.user.is_authenticated:
        return False
    key = f"safety:verify:{_client_address(request)}"
    cache.add(key, 0, timeout=3600)
    return cache.incr(key) > ANONYMOUS_VERIFY_PER_HOUR


@require_http_methods(["GET", "POST"])
def verify(request):
    """Upload a video or paste a share link: does it carry a Framecast mark?"""
    result, status, refusal = None, 200, None
    form = VerifyForm()
    if request.method == "POST":
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        if declared > max_upload_bytes() + 64 * 1024:
            # Refused before the body is read (touching request.POST would read it all).
            refusal, status = too_large_message(declared), 413
        elif _over_anonymous_limit(request):
            refusal, status = "Too many checks from your address; try again within the hour, or log in.", 429
        elif (form := VerifyForm(request.POST, request.FILES)).is_valid():
            try:
                if form.cleaned_data.get("file"):
                    verification = verify_upload(form.cleaned_data["file"])
                else:
                    verification = verify_share_link(form.cleaned_data["share_url"])
            except VerifyError as error:
                form.add_error(error.field if error.field in form.fields else None, error.message)
                status = error.status
            else:
                membership = request_membership(request)
                result = verification_json(verification, user=request.user, team=membership.team if membership else None)
        else:
            status = 400
    context = {"form": form, "result": result, "refusal": refusal, "max_mb": max_upload_bytes() // (1024 * 1024)}
    return render(request, "safety/verify.html", context, status=status)


@require_http_methods(["GET", "POST"])
def report(request, token):
    """Report a shared video to Framecast's staff."""
    job = job_for_share_token(token)
    if request.method == "POST":
        form = ReportForm(request.POST)
        if form.is_valid():
            moderation.report_video(job, reason=form.cleaned_data["reason"], note=form.cleaned_data["note"],
                                    reporter=request.user)
            return render(request, "safety/report_done.html", {"token": token})
        return render(request, "safety/report.html", {"form": form, "job": job, "token": token}, status=400)
    return render(request, "safety/report.html", {"form": ReportForm(), "job": job, "token": token})


def staff_only(view):
    """Staff pages are 404 for everyone else: their existence is not confirmed."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not (request.user.is_authenticated and request.user.is_staff):
            raise Http404("No such page.")
        return view(request, *args, **kwargs)

    return wrapper


@staff_only
def moderation_queue(request):
    return render(
        request,
        "safety/moderation_queue.html",
        {
            "flagged": moderation.flagged_queue()[:200],
            "reports": moderation.report_queue()[:200],
            "suspensions": moderation.suspended_teams(),
            "recent_refusals": ModerationDecision.objects.filter(outcome=ModerationDecision.Outcome.REFUSE)
            .select_related("team")
            .order_by("-created_at")[:50],
        },
    )


@staff_only
@require_POST
def moderation_decide(request):
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "That decision could not be read; please try again.")
        return redirect("safety:moderation")
    data = form.cleaned_data
    model = ModerationDecision if data["kind"] == "prompt" else VideoReport
    item = get_object_or_404(model, pk=data["item"])
    try:
        with transaction.atomic():
            moderation.decide(item, by=request.user, decision=data["decision"], note=data["note"])
            audit_record(
                staff=request.user,
                action=AuditEntry.Action.MODERATION_DECISION,
                target=item,
                reason=data["note"],
                details={"kind": data["kind"], "decision": data["decision"]},
            )
    except moderation.InvalidDecision as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "Decision recorded.")
    return redirect("safety:moderation")


@staff_only
@require_POST
def moderation_suspension(request):
    form = SuspensionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "That request could not be read; please try again.")
        return redirect("safety:moderation")
    team = get_object_or_404(Team, pk=form.cleaned_data["team"])
    # Through the operator dashboard's staff actions: one place, audited with the reason.
    reason = form.cleaned_data["reason"]
    try:
        if form.cleaned_data["action"] == "restore":
            staff_restore_team(staff=request.user, team=team, reason=reason)
            messages.success(request, f"{team.name} can generate videos again.")
        else:
            staff_suspend_team(staff=request.user, team=team, reason=reason)
            messages.success(request, f"{team.name}'s video generation is suspended.")
    except StaffActionRefused as refused:
        messages.error(request, refused.message)
    return redirect("safety:moderation")
