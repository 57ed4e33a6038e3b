from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.contrib import messages
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.permissions import Perm, require
from accounts.selectors import request_membership
from billing.ledger import account_for_team
from billing.quotas import SubmissionRefused

from . import catalog
from .forms import JobForm
from .ranges import file_response
from .selectors import job_for_team, jobs_for_team
from .services import InvalidTransition, job_cancel, job_quote, job_submit


def _team(request, perm: Perm):
    """The active team, if the user's role there allows `perm` (else 403)."""
    membership = request_membership(request)
    require(membership, perm)
    return membership.team


def _studio_context(request, form):
    team = _team(request, Perm.VIEW)
    return {
        "form": form,
        "team": team,
        "jobs": jobs_for_team(team),
        "models": catalog.available_models(),
        "account": account_for_team(team),
    }


@login_required
@require_http_methods(["GET", "POST"])
def studio(request):
    """The prompt form and the team's recent videos; a valid POST queues a job."""
    if request.method == "POST":
        form = JobForm(request.POST)
        team = _team(request, Perm.GENERATE)
        status = 400
        if form.is_valid():
            try:
                job = job_submit(team=team, user=request.user, params=form.params())
            except SubmissionRefused as refusal:
                form.add_error(refusal.field, refusal.message)
                status = refusal.status
            else:
                return redirect(job)
        return render(request, "generation/studio.html", _studio_context(request, form), status=status)
    return render(request, "generation/studio.html", _studio_context(request, JobForm()))


@login_required
@require_GET
def job_detail(request, job_id):
    job = job_for_team(_team(request, Perm.VIEW), job_id)
    again = JobForm(
        initial={
            "prompt": job.prompt,
            "negative_prompt": job.negative_prompt,
            "model": job.model_name,
            "width": job.width,
            "height": job.height,
            "num_frames": job.num_frames,
            "fps": job.fps,
            "steps": job.steps,
            "guidance": job.guidance,
            "speed": job.speed,
        }
    )
    context = {"job": job, "form": again, "account": account_for_team(job.team)}
    return render(request, "generation/job_detail.html", context)


def _job_file(request, job_id, field: str, content_type: str):
    job = job_for_team(_team(request, Perm.VIEW), job_id)
    file = getattr(job, field)
    if job.state != job.State.SUCCEEDED or not file:
        raise Http404("This video is not ready.")
    filename = f"framecast-{job.id}.{'mp4' if field == 'video' else 'jpg'}"
    response = file_response(
        request, file, content_type=content_type, filename=filename, as_attachment=request.GET.get("download") == "1"
    )
    response["Cache-Control"] = "private, max-age=3600"
    return response


@login_required
@require_GET
def job_video(request, job_id):
    return _job_file(request, job_id, "video", "video/mp4")


@login_required
@require_GET
def job_poster(request, job_id):
    return _job_file(request, job_id, "poster", "image/jpeg")


@login_required
@require_GET
def quote(request):
    """The price of the request in the query string, for the form to show before submitting."""
    _team(request, Perm.VIEW)
    data = request.GET.copy()
    if not data.get("prompt", "").strip():
        data["prompt"] = "price"  # the price does not depend on the words
    form = JobForm(data)
    if not form.is_valid():
        return JsonResponse({"errors": {field: list(errors) for field, errors in form.errors.items()}}, status=400)
    return JsonResponse({"price_credits": job_quote(form.params())})


@login_required
@require_POST
def job_cancel_view(request, job_id):
    job = job_for_team(_team(request, Perm.GENERATE), job_id)
    try:
        job_cancel(job.id)
    except InvalidTransition:
        messages.info(request, "The job had already ended.")
    else:
        messages.success(request, "Job cancelled; its credits are back in your balance.")
    return redirect(job)
