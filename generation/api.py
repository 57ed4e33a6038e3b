"""REST API v1 for videos: thin views over generation.services, authenticated by API key
or browser session, always acting for one team through `request_actor`."""

from django.http import FileResponse, Http404
from django.urls import reverse
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import Perm, require
from accounts.selectors import request_actor
from billing.quotas import SubmissionRefused
from config.api_errors import error_response

from .forms import JobForm
from .models import Job
from .selectors import job_for_team, jobs_for_team
from . import catalog, pools
from .services import InvalidTransition, job_cancel, job_submit


class VideoSerializer(serializers.ModelSerializer):
    status = serializers.CharField(source="state")
    model = serializers.CharField(source="model_name")
    progress = serializers.SerializerMethodField()
    error = serializers.CharField(source="error_message")
    content_url = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id", "status", "prompt", "negative_prompt", "model", "seed", "width", "height", "num_frames",
            "fps", "steps", "guidance", "price_credits", "progress", "error", "created_at", "started_at", "finished_at",
            "content_url",
        ]

    def get_progress(self, job) -> dict:
        return {"step": job.progress_step, "steps": job.steps}

    def get_content_url(self, job) -> str | None:
        if job.state != Job.State.SUCCEEDED:
            return None
        return self.context["request"].build_absolute_uri(reverse("api:video_content", args=[job.id]))


def _actor(request, perm: Perm):
    actor = request_actor(request)
    require(actor, perm)
    return actor


class VideoListCreate(APIView):
    def get(self, request):
        actor = _actor(request, Perm.VIEW)
        jobs = jobs_for_team(actor.team, limit=100)
        return Response({"data": VideoSerializer(jobs, many=True, context={"request": request}).data})

    def post(self, request):
        actor = _actor(request, Perm.GENERATE)
        form = JobForm(data=request.data)
        if not form.is_valid():
            raise exceptions.ValidationError({field: list(errors) for field, errors in form.errors.items()})
        try:
            job = job_submit(team=actor.team, user=actor.user, params=form.params(), api_key=actor.api_key)
        except SubmissionRefused as refusal:
            fields = {refusal.field: [refusal.message]} if refusal.field else None
            return error_response(refusal.status, refusal.message, fields=fields, error_type=refusal.code)
        return Response(VideoSerializer(job, context={"request": request}).data, status=status.HTTP_201_CREATED)


class VideoDetail(APIView):
    def get(self, request, job_id):
        actor = _actor(request, Perm.VIEW)
        job = job_for_team(actor.team, job_id)
        return Response(VideoSerializer(job, context={"request": request}).data)


class VideoContent(APIView):
    def get(self, request, job_id):
        actor = _actor(request, Perm.VIEW)
        job = job_for_team(actor.team, job_id)
        if job.state != Job.State.SUCCEEDED or not job.video:
            raise Http404(f"The video is not ready: the job is {job.state}.")
        return FileResponse(job.video.open("rb"), content_type="video/mp4", filename=f"framecast-{job.id}.mp4")


class VideoCancel(APIView):
    """Cancel a job: a queued one leaves the queue, a running one stops at its next step;
    its credits return. 409 if it has already ended."""

    def post(self, request, job_id):
        actor = _actor(request, Perm.GENERATE)
        job = job_for_team(actor.team, job_id)
        try:
            job = job_cancel(job.id)
        except InvalidTransition:
            return error_response(409, f"The job has already ended ({job.state}); there is nothing to cancel.")
        return Response(VideoSerializer(job, context={"request": request}).data)


class ModelList(APIView):
    """What can be generated, with each model's limits and defaults."""

    def get(self, request):
        _actor(request, Perm.VIEW)
        return Response({"data": [model_json(spec) for spec in catalog.available_models()]})


def model_json(spec) -> dict:
    return {
        "id": spec.name,
        "name": spec.label,
        "width": {"min": spec.min_side, "max": spec.max_side, "multiple_of": spec.size_multiple},
        "height": {"min": spec.min_side, "max": spec.max_side, "multiple_of": spec.size_multiple},
        "num_frames": {"max": spec.max_frames, "rule": f"{spec.frame_step}k+1"},
        "steps": {"max": spec.max_steps},
        "max_pixels_per_frame": spec.max_pixels_per_frame,
        "defaults": spec.defaults,
        "pool": pools.pool_for_model(spec.name).name,
    }
