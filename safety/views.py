"""The verifier page (anyone) and video reports (anyone with a share link). The staff
moderation queue is part of the staff dashboard (ops.views)."""

from django.core.cache import cache
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from accounts.permissions import is_staff_member, sends_api_key
from accounts.selectors import request_membership
from generation.sharing import job_for_share_token

from . import moderation
from .forms import ReportForm, VerifyForm
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
                result = verification_json(
                    verification, staff=is_staff_member(request.user, via_api_key=sends_api_key(request)),
                    team=membership.team if membership else None,
                )
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
