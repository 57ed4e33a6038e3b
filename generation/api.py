"""REST API v1 for videos: thin views over generation.services, authenticated by API key
or browser session, always acting for one team through `request_actor`."""

import hashlib
import json
import time
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.http import FileResponse, Http404
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import Perm, require
from accounts.selectors import request_actor
from billing.quotas import SubmissionRefused
from config.api_errors import error_response
from config.api_schema import errors

from . import catalog, pools
from .forms import JobForm
from .models import IdempotencyRecord, Job
from .selectors import job_for_team, jobs_for_team
from .services import InvalidTransition, job_cancel, job_submit
from .webhooks import validate_webhook_url

IDEMPOTENCY_WINDOW = timedelta(hours=24)
MAX_WAIT_SECONDS = 60


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
            "fps", "steps", "guidance", "price_credits", "metadata", "webhook_url", "progress", "error", "created_at", "started_at", "finished_at",
            "content_url",
        ]

    def get_progress(self, job) -> dict:
        return {
            "step": job.progress_step,
            "steps": job.steps,
            "percent": round(100 * job.progress_step / job.steps) if job.steps else 0,
        }

    def get_content_url(self, job) -> str | None:
        if job.state != Job.State.SUCCEEDED:
            return None
        path = reverse("api:video_content", args=[job.id])
        request = self.context.get("request")
        # Webhooks have no request to take the host from.
        return request.build_absolute_uri(path) if request else settings.FRAMECAST_PUBLIC_URL.rstrip("/") + path


def _actor(request, perm: Perm):
    actor = request_actor(request)
    require(actor, perm)
    return actor


class VideoCreateSerializer(serializers.Serializer):
    """The request body (documentation: the rules themselves live in generation.forms and
    generation.catalog, shared with the studio)."""

    prompt = serializers.CharField(max_length=catalog.MAX_PROMPT_CHARS)
    negative_prompt = serializers.CharField(required=False, allow_blank=True)
    model = serializers.CharField(required=False, help_text="See GET /models; default: the tiny model.")
    seed = serializers.IntegerField(required=False, min_value=0, max_value=catalog.MAX_SEED)
    width = serializers.IntegerField(required=False)
    height = serializers.IntegerField(required=False)
    num_frames = serializers.IntegerField(required=False, help_text="4k+1 for Wan-family models.")
    fps = serializers.IntegerField(required=False, min_value=catalog.MIN_FPS, max_value=catalog.MAX_FPS)
    steps = serializers.IntegerField(required=False)
    guidance = serializers.FloatField(required=False, min_value=catalog.MIN_GUIDANCE, max_value=catalog.MAX_GUIDANCE)
    webhook_url = serializers.URLField(required=False, help_text="Called when the video starts and ends (Standard Webhooks).")
    metadata = serializers.DictField(required=False, help_text="Yours, returned as given (at most 4 KB of JSON).")


MAX_METADATA_BYTES = 4096


def _webhook_and_metadata(data) -> dict:
    """The API-only fields, checked; raises ValidationError naming the field."""
    url = (data.get("webhook_url") or "").strip()
    metadata = data.get("metadata") or {}
    if url:
        validate_webhook_url(url)
    if not isinstance(metadata, dict):
        raise DjangoValidationError({"metadata": "Metadata must be a JSON object."})
    if len(json.dumps(metadata)) > MAX_METADATA_BYTES:
        raise DjangoValidationError({"metadata": f"Metadata may be at most {MAX_METADATA_BYTES} bytes of JSON."})
    return {"webhook_url": url, "metadata": metadata}


IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="Retries with the same key and body within 24 h return the first response and create nothing.",
)
PREFER_HEADER = OpenApiParameter(
    "Prefer",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description=f"`wait=N`: hold the response until the video ends or N seconds pass (at most {MAX_WAIT_SECONDS}).",
)


def _request_hash(data) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _wait_seconds(request) -> float:
    for part in request.headers.get("Prefer", "").split(","):
        name, _, value = part.strip().partition("=")
        if name == "wait" and value.strip().isdigit():
            return min(int(value), MAX_WAIT_SECONDS)
    return 0


class VideoListCreate(APIView):
    @extend_schema(
        operation_id="list_videos",
        responses={200: inline_serializer("VideoList", {"data": VideoSerializer(many=True)}), **errors(401, 403)},
    )
    def get(self, request):
        actor = _actor(request, Perm.VIEW)
        jobs = jobs_for_team(actor.team, limit=100)
        return Response({"data": VideoSerializer(jobs, many=True, context={"request": request}).data})

    @extend_schema(
        operation_id="create_video",
        request=VideoCreateSerializer,
        parameters=[IDEMPOTENCY_HEADER, PREFER_HEADER],
        responses={201: VideoSerializer, 200: VideoSerializer, **errors(400, 401, 402, 403, 404, 409, 422, 429)},
    )
    def post(self, request):
        actor = _actor(request, Perm.GENERATE)
        key = request.headers.get("Idempotency-Key", "").strip()
        if not key:
            response = self._create(request, actor)
        else:
            response = self._create_once(request, actor, key)
        wait = _wait_seconds(request)
        if wait and response.status_code == status.HTTP_201_CREATED:
            response = self._wait_for_end(request, response.data["id"], wait)
        return response

    def _create(self, request, actor) -> Response:
        form = JobForm(data=request.data)
        if not form.is_valid():
            fields = {field: list(messages) for field, messages in form.errors.items()}
            return error_response(400, next(iter(fields.values()))[0], fields=fields)
        try:
            extra = _webhook_and_metadata(request.data)
        except DjangoValidationError as error:
            fields = error.message_dict
            return error_response(400, next(iter(fields.values()))[0], fields=fields)
        try:
            job = job_submit(team=actor.team, user=actor.user, params=form.params(), api_key=actor.api_key, **extra)
        except SubmissionRefused as refusal:
            fields = {refusal.field: [refusal.message]} if refusal.field else None
            return error_response(refusal.status, refusal.message, fields=fields, error_type=refusal.code)
        return Response(VideoSerializer(job, context={"request": request}).data, status=status.HTTP_201_CREATED)

    def _create_once(self, request, actor, key: str) -> Response:
        if len(key) > 255:
            return error_response(400, "Idempotency-Key may be at most 255 characters.", fields={"Idempotency-Key": ["too long"]})
        digest = _request_hash(request.data)
        IdempotencyRecord.objects.filter(
            team=actor.team, key=key, created_at__lt=timezone.now() - IDEMPOTENCY_WINDOW
        ).delete()
        try:
            with transaction.atomic():
                # The insert takes the key: a concurrent twin blocks here until this commits.
                record = IdempotencyRecord.objects.create(team=actor.team, key=key, request_hash=digest)
                response = self._create(request, actor)
                record.response_status = response.status_code
                record.response_body = response.data
                record.save(update_fields=["response_status", "response_body"])
                return response
        except IntegrityError:
            record = IdempotencyRecord.objects.get(team=actor.team, key=key)
        if record.request_hash != digest:
            return error_response(
                422,
                "This Idempotency-Key was used with a different request body; use a new key for a new request.",
                error_type="idempotency_key_reused",
            )
        return Response(record.response_body, status=record.response_status, headers={"Idempotent-Replayed": "true"})

    def _wait_for_end(self, request, job_id, seconds: float) -> Response:
        """`Prefer: wait=N` (as Replicate's API): poll the job row until it ends or time is up."""
        deadline = time.monotonic() + seconds
        job = Job.objects.get(pk=job_id)
        while not job.is_terminal and time.monotonic() < deadline:
            time.sleep(0.25)
            job.refresh_from_db()
        body = VideoSerializer(job, context={"request": request}).data
        return Response(body, status=status.HTTP_201_CREATED)


class VideoDetail(APIView):
    @extend_schema(operation_id="get_video", responses={200: VideoSerializer, **errors(401, 403, 404)})
    def get(self, request, job_id):
        actor = _actor(request, Perm.VIEW)
        job = job_for_team(actor.team, job_id)
        return Response(VideoSerializer(job, context={"request": request}).data)


class VideoContent(APIView):
    @extend_schema(
        operation_id="get_video_content", responses={(200, "video/mp4"): OpenApiTypes.BINARY, **errors(401, 403, 404)}
    )
    def get(self, request, job_id):
        actor = _actor(request, Perm.VIEW)
        job = job_for_team(actor.team, job_id)
        if job.state != Job.State.SUCCEEDED or not job.video:
            raise Http404(f"The video is not ready: the job is {job.state}.")
        return FileResponse(job.video.open("rb"), content_type="video/mp4", filename=f"framecast-{job.id}.mp4")


class VideoCancel(APIView):
    """Cancel a job: a queued one leaves the queue, a running one stops at its next step;
    its credits return. 409 if it has already ended."""

    @extend_schema(
        operation_id="cancel_video", request=None, responses={200: VideoSerializer, **errors(401, 403, 404, 409)}
    )
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

    @extend_schema(operation_id="list_models", responses={200: OpenApiTypes.OBJECT, **errors(401, 403)})
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
