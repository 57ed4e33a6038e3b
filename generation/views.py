"""The studio, the gallery, a video's page and its public share link. Thin views: the rules
live in services (jobs), sharing (links), studio (options, live status) and gallery (filters)."""

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.permissions import Actor, Perm, has_perm, require
from accounts.selectors import request_membership
from billing import budgets
from billing.ledger import account_for_team
from billing.pricing import LORA_SURCHARGE
from core.errors import Refusal
from core.redirects import safe_next

from . import catalog, payloads, studio
from .gallery import GalleryFilters, gallery_page
from .inputs import full_quality_params
from .loras import MAX_SCALE
from .models import Job
from .ranges import file_response
from .selectors import job_for_team
from .services import InvalidTransition, job_cancel, job_delete, job_quote, job_submit
from .sharing import NotShareable, job_for_share_token, job_share_disable, job_share_enable, share_url, shared_filename
from .studio import StudioForm

RECENT_IN_STUDIO = 8


def _membership(request, perm: Perm):
    """The user's membership in the active team, if its role allows `perm` (else 403)."""
    membership = request_membership(request)
    require(membership, perm)
    return membership


def _team(request, perm: Perm):
    return _membership(request, perm).team


def _with_live_status(jobs) -> list[Job]:
    jobs = list(jobs)
    for job in jobs:
        job.live = payloads.live_status(job)
    return jobs


ADVANCED_FIELDS = ("width", "height", "num_frames", "fps", "guidance")


def _studio_context(request, form, membership):
    team = membership.team
    account = account_for_team(team)
    jobs = Job.objects.filter(team=team).select_related("created_by")
    options = studio.studio_options(account.plan)
    current_model = form["model"].value() or catalog.default_model().name
    steps_offered = {option.value for option in options["steps"] if option.model == current_model}
    chosen_steps = str(form["steps"].value() or "")
    aspect = form["aspect_ratio"].value()
    for option in options["resolution"]:  # greyed out for the aspect chosen now (the script follows changes)
        option.needs = option.data["sizes"].get(aspect, {}).get("needs", "")
    return {
        "form": form,
        "team": team,
        "account": account,
        "options": options,
        "current_model": current_model,
        "custom_steps": chosen_steps if chosen_steps and chosen_steps not in steps_offered else "",
        "plan_hint": any(option.needs for values in options.values() for option in values if option.model == current_model),
        "advanced_fields": [form[name] for name in ADVANCED_FIELDS],
        "lora_pickers": [(form[f"lora_{number}"], form[f"lora_{number}_scale"]) for number in studio.LORA_PICKERS],
        "team_loras": form.team_loras,
        "lora_max_scale": MAX_SCALE,
        "lora_surcharge_percent": round(100 * LORA_SURCHARGE),
        "loras_open": any(form[f"lora_{number}"].value() for number in studio.LORA_PICKERS)
        or any(form[name].errors for number in studio.LORA_PICKERS for name in (f"lora_{number}", f"lora_{number}_scale")),
        "advanced_open": any(form[name].errors for name in ADVANCED_FIELDS),
        "models": catalog.available_models(),
        "can_generate": has_perm(membership, Perm.GENERATE),
        "live_jobs": _with_live_status(jobs.filter(state__in=[Job.State.THROTTLED, *Job.ACTIVE]).order_by("created_at")),
        "recent_jobs": jobs.filter(state__in=Job.TERMINAL)[:RECENT_IN_STUDIO],
        "budget_notices": budgets.notices(Actor(team=team, user=membership.user, membership=membership)),
    }


@login_required
@require_http_methods(["GET", "POST"])
def studio_page(request):
    """The prompt form, the team's live jobs and its latest videos; a valid POST queues a
    job (then the studio again, or the job's page for forms that do not say `next`)."""
    membership = _membership(request, Perm.VIEW)
    if request.method == "POST":
        require(membership, Perm.GENERATE)
        form = StudioForm(request.POST, team=membership.team)
        status = 400
        if form.is_valid():
            try:
                job = job_submit(team=membership.team, user=request.user, params=form.params())
            except Refusal as refusal:
                form.add_refusal(refusal)
                status = refusal.status
            else:
                if request.POST.get("next") == "studio":
                    # Back to the studio, its settings kept for the next take.
                    return redirect(reverse("generation:studio") + f"?after={job.id}#job-{job.id}")
                return redirect(job)
        return render(request, "generation/studio.html", _studio_context(request, form, membership), status=status)
    # ?remix=<id>: that video's settings, its seed included; ?after=<id>: the settings just
    # submitted, for the next take (with a new random seed: the same one would only give
    # the same video again).
    source = request.GET.get("remix") or request.GET.get("after")
    if source:
        try:
            job = job_for_team(membership.team, uuid.UUID(source))
        except ValueError:
            raise Http404("No such job.") from None
        initial = studio.initial_from_job(job)
        if not request.GET.get("remix"):
            initial["seed"] = None
    else:
        initial = studio.initial_defaults()
    return render(request, "generation/studio.html", _studio_context(request, StudioForm(initial=initial, team=membership.team), membership))


@login_required
@require_GET
def quote(request):
    """The price of the request in the query string, for the form to show before submitting."""
    team = _team(request, Perm.VIEW)
    data = request.GET.copy()
    if not data.get("prompt", "").strip():
        data["prompt"] = "price"  # the price does not depend on the words
    form = StudioForm(data, team=team)
    if not form.is_valid():
        return JsonResponse({"errors": {field: list(errors) for field, errors in form.errors.items()}}, status=400)
    params = form.params()
    return JsonResponse(
        {"price_credits": job_quote(params), "width": params.width, "height": params.height, "num_frames": params.num_frames}
    )


@login_required
@require_GET
def live_status(request):
    """The stored state of some of the team's jobs (`?ids=a,b`): queue positions, and a
    catch-up for pages whose websocket was away."""
    team = _team(request, Perm.VIEW)
    ids = []
    for part in [part for part in request.GET.get("ids", "").split(",") if part][:50]:
        try:
            ids.append(uuid.UUID(part))
        except ValueError:
            return JsonResponse(
                {"error": {"type": "invalid_request", "message": f"ids: {part!r} is not a job id.", "field": "ids"}},
                status=400,
            )
    jobs = Job.objects.filter(team=team, pk__in=ids)
    return JsonResponse({"jobs": [payloads.live_status(job) for job in jobs]})


@login_required
@require_GET
def gallery(request):
    membership = _membership(request, Perm.VIEW)
    filters = GalleryFilters(request.GET or None, team=membership.team)
    if not request.GET:
        filters = GalleryFilters({"scope": "team"}, team=membership.team)
    page = gallery_page(filters, team=membership.team, user=request.user, page=request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"filters": filters, "page": page, "query": query.urlencode(), "team": membership.team}
    return render(request, "generation/gallery.html", context, status=200 if filters.is_valid() else 400)


@login_required
@require_GET
def job_detail(request, job_id):
    membership = _membership(request, Perm.VIEW)
    job = job_for_team(membership.team, job_id)
    job.live = payloads.live_status(job)
    context = {
        "job": job,
        "share_url": request.build_absolute_uri(share_url(job)) if job.share_token else "",
        "can_generate": has_perm(membership, Perm.GENERATE),
    }
    return render(request, "generation/job_detail.html", context)


def _job_file(request, job_id, field: str, content_type: str):
    job = job_for_team(_team(request, Perm.VIEW), job_id)
    return _serve(request, job, field, content_type, cache="private, max-age=3600")


def _serve(request, job: Job, field: str, content_type: str, *, cache: str, shared: bool = False):
    file = getattr(job, field)
    if job.state != job.State.SUCCEEDED or not file:
        raise Http404("This video is not ready.")
    extension = "mp4" if field == "video" else "jpg"
    filename = shared_filename(job, extension) if shared else f"framecast-{job.id}.{extension}"
    response = file_response(
        request, file, content_type=content_type, filename=filename, as_attachment=request.GET.get("download") == "1"
    )
    response["Cache-Control"] = cache
    return response


@login_required
@require_GET
def job_video(request, job_id):
    return _job_file(request, job_id, "video", "video/mp4")


@login_required
@require_GET
def job_poster(request, job_id):
    return _job_file(request, job_id, "poster", "image/jpeg")


def _wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@login_required
@require_POST
def job_cancel_view(request, job_id):
    job = job_for_team(_team(request, Perm.GENERATE), job_id)
    try:
        job = job_cancel(job.id)
    except InvalidTransition:
        message, ok = "The job had already ended.", False
        job.refresh_from_db()
    else:
        message, ok = "Job cancelled; its credits are back in your balance.", True
    if _wants_json(request):
        return JsonResponse({"cancelled": ok, "message": message, "job": payloads.live_status(job)})
    (messages.success if ok else messages.info)(request, message)
    return redirect(safe_next(request, job.get_absolute_url()))


@login_required
@require_POST
def job_delete_view(request, job_id):
    job = job_for_team(_team(request, Perm.GENERATE), job_id)
    try:
        job_delete(job)
    except InvalidTransition:
        messages.error(request, "This job has not ended yet: cancel it before deleting it.")
        return redirect(job)
    messages.success(request, "Video deleted.")
    return redirect("generation:gallery")


@login_required
@require_POST
def job_share_view(request, job_id):
    """Turn the public link on (`share=on`) or off (anything else)."""
    job = job_for_team(_team(request, Perm.GENERATE), job_id)
    if request.POST.get("share") == "on":
        try:
            job_share_enable(job)
        except NotShareable as refusal:
            messages.error(request, str(refusal))
        else:
            messages.success(request, "Anyone with the link can now watch this video.")
    else:
        job_share_disable(job)
        messages.success(request, "Sharing is off: the link no longer works.")
    return redirect(job)


@login_required
@require_POST
def job_full_quality_view(request, job_id):
    """One click on a turbo (or fast) video: the same video at full quality, queued."""
    membership = _membership(request, Perm.GENERATE)
    source = job_for_team(membership.team, job_id)
    try:
        job = job_submit(team=membership.team, user=request.user, params=full_quality_params(source))
    except Refusal as refusal:
        messages.error(request, refusal.message)
        return redirect(source)
    messages.success(request, "Rendering this video again at full quality.")
    return redirect(job)


@require_GET
def shared_page(request, token):
    """A shared video for anyone with the link: the player and the prompt, nothing else of
    the team's."""
    job = job_for_share_token(token)
    response = render(request, "generation/shared.html", {"job": job, "token": token})
    response["X-Robots-Tag"] = "noindex"
    response["Referrer-Policy"] = "no-referrer"
    return response


@require_GET
def shared_video(request, token):
    return _serve(request, job_for_share_token(token), "video", "video/mp4", cache="no-cache", shared=True)


@require_GET
def shared_poster(request, token):
    return _serve(request, job_for_share_token(token), "poster", "image/jpeg", cache="no-cache", shared=True)
