"""REST API v1 for videos: thin views over generation.services, authenticated by API key
or browser session, always acting for one team through `request_actor`."""

import json
import time
from datetime import timezone as dt_timezone

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import RegexValidator
from django.http import Http404
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import Perm
from accounts.selectors import request_actor_allowed
from billing import pricing
from billing.rate_limits import PlanRequestThrottle, PlanVideoThrottle
from core.api_errors import refusal_response
from core.errors import Refusal
from core.parsers import MultiPartParser
from core.api_schema import errors
from core.cleaning import MAX_DEPTH, visible_prompt
from core.pagination import StrictCursorPagination
from core.text import whole_number

from . import catalog, payloads, pools
from .forms import JobForm
from .inputs import DEFAULT_REMIX_STRENGTH, full_quality_params, remix_params
from .ranges import file_response
from .idempotency import HEADER as IDEMPOTENCY_KEY
from .idempotency import respond_once
from . import loras as team_loras
from .models import Job
from .selectors import job_for_team
from .params import JobParams
from .services import InvalidTransition, job_cancel, job_delete, job_quote, job_submit
from .webhooks import validate_webhook_url

MAX_WAIT_SECONDS = 60


class ProgressSerializer(serializers.Serializer):
    step = serializers.IntegerField()
    steps = serializers.IntegerField()
    percent = serializers.IntegerField()
    eta_seconds = serializers.FloatField(allow_null=True)


class LoraUseSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField(help_text="The LoRA's name when the video was made.")
    scale = serializers.FloatField()


class VideoSerializer(serializers.ModelSerializer):
    """The video object: its fields are documented here, its values built by
    generation.payloads.video (shared with webhooks)."""

    status = serializers.CharField(source="state")
    model = serializers.CharField(source="model_name")
    progress = ProgressSerializer()
    queue_position = serializers.IntegerField(allow_null=True, help_text="1 = next to start on its pool; null once it runs.")
    error = serializers.CharField(source="error_message")
    content_url = serializers.URLField(allow_null=True)
    remixed_from = serializers.UUIDField(source="remixed_from_id", allow_null=True)
    has_input_image = serializers.BooleanField()
    loras = LoraUseSerializer(many=True, help_text="The team LoRAs applied, in order; [] for none.")

    class Meta:
        model = Job
        fields = [
            "id", "status", "prompt", "negative_prompt", "model", "seed", "width", "height", "num_frames",
            "fps", "steps", "guidance", "speed", "price_credits", "metadata", "webhook_url", "progress", "queue_position", "error", "created_at", "started_at", "finished_at",
            "content_url", "remixed_from", "strength", "has_input_image", "loras",
        ]

    def to_representation(self, job) -> dict:
        request = self.context.get("request")
        base_url = request.build_absolute_uri("/") if request else settings.FRAMECAST_PUBLIC_URL
        return payloads.video(job, base_url=base_url)


class LoraRequestSerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="One of the team's LoRAs for this model (GET /loras).")
    scale = serializers.FloatField(
        required=False, allow_null=True, min_value=team_loras.MIN_SCALE_EXCLUSIVE, max_value=team_loras.MAX_SCALE,
        help_text=f"More than {team_loras.MIN_SCALE_EXCLUSIVE:g} and at most {team_loras.MAX_SCALE:g} "
        f"(default {team_loras.DEFAULT_SCALE:g}).",
    )


class VideoCreateSerializer(serializers.Serializer):
    """The request body (documentation: the rules themselves live in generation.forms and
    generation.catalog, shared with the studio). Optional fields may be absent or null:
    then the model's default applies."""

    prompt = serializers.CharField(
        max_length=catalog.MAX_PROMPT_CHARS, validators=[visible_prompt], help_text="At least one visible character."
    )
    negative_prompt = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    model = serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text="See GET /models; absent or empty: the default model.",
    )
    seed = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=catalog.MAX_SEED)
    # The bounds of every model together; each model's own limits are in GET /models.
    width = serializers.IntegerField(required=False, allow_null=True, min_value=32, max_value=1280)
    height = serializers.IntegerField(required=False, allow_null=True, min_value=32, max_value=1280)
    num_frames = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=81, help_text="4k+1 for Wan models.")
    duration = serializers.FloatField(
        required=False, allow_null=True, min_value=0.1, max_value=20, help_text="Seconds of video, instead of num_frames."
    )
    fps = serializers.IntegerField(required=False, allow_null=True, min_value=catalog.MIN_FPS, max_value=catalog.MAX_FPS)
    steps = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=100)
    guidance = serializers.FloatField(required=False, allow_null=True, min_value=catalog.MIN_GUIDANCE, max_value=catalog.MAX_GUIDANCE)
    speed = serializers.ChoiceField(
        choices=Job.Speed.choices, required=False, allow_null=True,
        help_text=(
            "fast: cheaper and sooner, a little less detail. turbo (models whose speed_options list it): "
            "a few-step distilled version, much faster and cheaper, may lose fine motion; it runs its own steps and "
            "guidance (leave them out). To re-render a turbo video at full quality, send the same request with "
            "its seed and speed standard."
        ),
    )
    webhook_url = serializers.URLField(
        required=False, allow_null=True, allow_blank=True, validators=[RegexValidator("^https?://")],
        help_text="Called when the video starts and ends (Standard Webhooks): an http(s) address on the public internet.",
    )
    metadata = serializers.DictField(
        required=False, allow_null=True,
        help_text=f"Yours, returned as given: at most 4096 bytes of JSON, objects and lists nested at most {MAX_DEPTH - 1} levels.",
    )
    loras = LoraRequestSerializer(
        many=True, required=False, allow_null=True,
        help_text=(
            f"Team LoRAs to apply (at most {team_loras.MAX_LORAS_PER_JOB}, each once), made for this model. "
            f"Each adds {round(100 * pricing.LORA_SURCHARGE)}% to the price. An id the team has no LoRA of is a 404."
        ),
    )


MAX_METADATA_BYTES = 4096


def _scalars_only(data) -> None:
    """JSON bodies may carry lists or objects where a form field takes one value: refuse
    them by name rather than turning `["a"]` into the prompt "['a']"."""
    for name in JobForm.base_fields:
        value = data.get(name)
        if isinstance(value, list | dict):
            raise DjangoValidationError({name: f"{name} must be a single value, not a list or an object."})


def _with_frames_from_duration(data):
    """`duration` (seconds) instead of `num_frames`: the nearest frame count the model takes
    at the requested (or default) fps."""
    if "duration" not in data or data.get("num_frames") not in (None, ""):
        return data
    try:
        duration = float(data["duration"])
    except (TypeError, ValueError):
        raise DjangoValidationError({"duration": "Duration must be a number of seconds."}) from None
    if not 0 < duration <= 20:
        raise DjangoValidationError({"duration": "Duration must be more than 0 and at most 20 seconds."})
    spec = catalog.get_model(data.get("model") or catalog.default_model().name) or catalog.default_model()
    try:
        fps = int(data.get("fps") or spec.defaults["fps"])
    except (TypeError, ValueError):
        return data  # the form names the bad fps
    return {**data, "num_frames": catalog.frames_for_duration(spec, duration, fps)}


def _webhook_and_metadata(data) -> dict:
    """The API-only fields, checked; raises ValidationError naming the field."""
    url = data.get("webhook_url")
    url = "" if url is None else url  # not `or ""`: {} or 0 is no URL, not "no webhook"
    if not isinstance(url, str):
        raise DjangoValidationError({"webhook_url": "Webhook URL must be a string."})
    url = url.strip()
    metadata = data.get("metadata")
    metadata = {} if metadata is None else metadata  # nor is "" or [] the object the schema asks for
    if url:
        validate_webhook_url(url)
    if not isinstance(metadata, dict):
        raise DjangoValidationError({"metadata": "Metadata must be a JSON object."})
    if len(json.dumps(metadata)) > MAX_METADATA_BYTES:
        raise DjangoValidationError({"metadata": f"Metadata may be at most {MAX_METADATA_BYTES} bytes of JSON."})
    return {"webhook_url": url, "metadata": metadata}


IDEMPOTENCY_HEADER = OpenApiParameter(
    IDEMPOTENCY_KEY,
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


def _wait_seconds(request) -> float:
    for part in request.headers.get("Prefer", "").split(","):
        name, _, value = part.strip().partition("=")
        if name == "wait" and whole_number(value) is not None:
            return min(whole_number(value), MAX_WAIT_SECONDS)
    return 0


class VideoCursor(StrictCursorPagination):
    ordering = "-created_at"
    page_size = 20
    max_page_size = 100
    page_size_query_param = "limit"


LIST_FILTERS = [
    OpenApiParameter("status", OpenApiTypes.STR, enum=[state.value for state in Job.State]),
    OpenApiParameter("created_after", OpenApiTypes.DATETIME),
    OpenApiParameter("created_before", OpenApiTypes.DATETIME),
    OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": 100}, description="Page size, 1 to 100."),
    OpenApiParameter("cursor", OpenApiTypes.STR, description="From `next` or `previous` of a page."),
]


def _filtered(jobs, query):
    """Apply the list filters; a bad value is a 400 naming the parameter."""
    limits = query.getlist("limit")
    if limits and (len(limits) > 1 or not 1 <= (whole_number(limits[0]) or 0) <= VideoCursor.max_page_size):
        raise exceptions.ValidationError({"limit": [f"limit must be a whole number from 1 to {VideoCursor.max_page_size}."]})
    if "status" in query:
        status_filter = query["status"]
        if status_filter not in Job.State.values:
            raise exceptions.ValidationError({"status": [f"Status must be one of {', '.join(Job.State.values)}."]})
        jobs = jobs.filter(state=status_filter)
    for name, lookup in (("created_after", "created_at__gt"), ("created_before", "created_at__lt")):
        if name in query:
            try:
                moment = parse_datetime(query[name])
            except ValueError:
                moment = None
            if moment is None:
                raise exceptions.ValidationError({name: [f"{name} must be an ISO 8601 date-time."]})
            if timezone.is_naive(moment):
                moment = timezone.make_aware(moment, dt_timezone.utc)
            # In UTC: PostgreSQL refuses offsets beyond ±15:59 that ISO 8601 allows.
            jobs = jobs.filter(**{lookup: moment.astimezone(dt_timezone.utc)})
    return jobs


class VideoListCreate(APIView):
    throttle_classes = [PlanRequestThrottle, PlanVideoThrottle]

    @extend_schema(
        operation_id="list_videos",
        parameters=LIST_FILTERS,
        responses={
            200: inline_serializer(
                "VideoPage",
                {
                    "data": VideoSerializer(many=True),
                    "next": serializers.URLField(allow_null=True),
                    "previous": serializers.URLField(allow_null=True),
                },
            ),
            **errors(400, 401, 403, 404),  # 404: a cursor that is not one of ours
        },
    )
    def get(self, request):
        actor = request_actor_allowed(request, Perm.VIEW)
        jobs = _filtered(Job.objects.filter(team=actor.team), request.query_params)
        paginator = VideoCursor()
        page = paginator.paginate_queryset(jobs, request, view=self)
        return Response(
            {
                "data": VideoSerializer(page, many=True, context={"request": request}).data,
                "next": paginator.get_next_link(),
                "previous": paginator.get_previous_link(),
            }
        )

    @extend_schema(
        operation_id="create_video",
        # JSON only: a form body has no null and no object (metadata). Forms are still read.
        request={"application/json": VideoCreateSerializer},
        parameters=[IDEMPOTENCY_HEADER, PREFER_HEADER],
        responses={201: VideoSerializer, 200: VideoSerializer, **errors(400, 401, 402, 403, 404, 409, 422, 429)},
    )
    def post(self, request):
        actor = request_actor_allowed(request, Perm.GENERATE)
        if not isinstance(request.data, dict):
            raise Refusal("The request body must be a JSON object of the video's fields.")
        response = respond_once(request, team=actor.team, respond=lambda: self._create(request, actor), refused=refusal_response)
        wait = _wait_seconds(request)
        if wait and response.status_code == status.HTTP_201_CREATED:
            response = self._wait_for_end(request, response.data["id"], wait)
        return response

    def _create(self, request, actor) -> Response:
        _scalars_only(request.data)
        form = JobForm(data=_with_frames_from_duration(request.data))
        if not form.is_valid():
            raise Refusal.from_fields(form.errors)
        extra = _webhook_and_metadata(request.data)
        params = team_loras.with_loras(form.params(), actor.team, request.data.get("loras"))
        job = job_submit(team=actor.team, user=actor.user, params=params, api_key=actor.api_key, **extra)
        return Response(VideoSerializer(job, context={"request": request}).data, status=status.HTTP_201_CREATED)

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
        actor = request_actor_allowed(request, Perm.VIEW)
        job = job_for_team(actor.team, job_id)
        return Response(VideoSerializer(job, context={"request": request}).data)

    @extend_schema(operation_id="delete_video", responses={204: None, **errors(401, 403, 404, 409)})
    def delete(self, request, job_id):
        """Delete a finished video and its files (the credit history keeps its record)."""
        actor = request_actor_allowed(request, Perm.GENERATE)
        job = job_for_team(actor.team, job_id)
        try:
            job_delete(job)
        except InvalidTransition:
            raise Refusal(f"The job is {job.state}; cancel it before deleting it.", status=409, code="conflict") from None
        return Response(status=status.HTTP_204_NO_CONTENT)


def _file_response(request, job_id, field: str, content_type: str, extension: str):
    actor = request_actor_allowed(request, Perm.VIEW)
    job = job_for_team(actor.team, job_id)
    file = getattr(job, field)
    if job.state != Job.State.SUCCEEDED or not file:
        raise Http404(f"The video is not ready: the job is {job.state}.")
    return file_response(request, file, content_type=content_type, filename=f"framecast-{job.id}.{extension}")


class VideoContent(APIView):
    @extend_schema(
        operation_id="get_video_content", responses={(200, "video/mp4"): OpenApiTypes.BINARY, **errors(401, 403, 404)}
    )
    def get(self, request, job_id):
        return _file_response(request, job_id, "video", "video/mp4", "mp4")


class VideoThumbnail(APIView):
    @extend_schema(
        operation_id="get_video_thumbnail", responses={(200, "image/jpeg"): OpenApiTypes.BINARY, **errors(401, 403, 404)}
    )
    def get(self, request, job_id):
        return _file_response(request, job_id, "poster", "image/jpeg", "jpg")


class VideoSpritesheet(APIView):
    @extend_schema(
        operation_id="get_video_spritesheet",
        responses={(200, "image/jpeg"): OpenApiTypes.BINARY, **errors(401, 403, 404)},
    )
    def get(self, request, job_id):
        """A grid of up to 16 evenly spaced frames (JPEG)."""
        return _file_response(request, job_id, "spritesheet", "image/jpeg", "jpg")


class RemixSerializer(serializers.Serializer):
    prompt = serializers.CharField(
        max_length=catalog.MAX_PROMPT_CHARS, validators=[visible_prompt], help_text="At least one visible character."
    )
    strength = serializers.FloatField(
        required=False, allow_null=True, min_value=0.0, max_value=1.0,
        help_text=f"How far from the source frames, more than 0 and at most 1 (default {DEFAULT_REMIX_STRENGTH}).",
    )
    seed = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=catalog.MAX_SEED)


class VideoRemix(APIView):
    """Re-generate a finished video's frames with a new prompt (video to video): the same
    model, size, length and settings, priced and queued like any video.

    Only a finished video (`status` succeeded; otherwise 409 `not_finished`) of a model that
    remixes (`remix: true` in GET /models; otherwise 400 `remix_unsupported` naming `model`)."""

    throttle_classes = [PlanRequestThrottle, PlanVideoThrottle]

    @extend_schema(
        operation_id="remix_video",
        request={"application/json": RemixSerializer},
        responses={201: VideoSerializer, **errors(400, 401, 402, 403, 404, 409, 429)},
    )
    def post(self, request, job_id):
        actor = request_actor_allowed(request, Perm.GENERATE)
        source = job_for_team(actor.team, job_id)
        body = RemixSerializer(data=request.data if isinstance(request.data, dict) else {})
        body.is_valid(raise_exception=True)

        def remix() -> Response:
            params = remix_params(source, **body.validated_data)
            job = job_submit(team=actor.team, user=actor.user, params=params, api_key=actor.api_key)
            return Response(VideoSerializer(job, context={"request": request}).data, status=status.HTTP_201_CREATED)

        return respond_once(request, team=actor.team, respond=remix, refused=refusal_response)


class VideoFullQuality(APIView):
    """Make the same video again at the model's full quality: a turbo (or fast) video's
    prompt, seed, size, length and inputs at the standard speed with the model's default
    steps and guidance, priced and queued like any video. 409 `already_full_quality` for a
    video made at the standard speed."""

    throttle_classes = [PlanRequestThrottle, PlanVideoThrottle]

    @extend_schema(
        operation_id="full_quality_video",
        request=None,
        responses={201: VideoSerializer, **errors(400, 401, 402, 403, 404, 409, 429)},
    )
    def post(self, request, job_id):
        actor = request_actor_allowed(request, Perm.GENERATE)
        source = job_for_team(actor.team, job_id)

        def rerun() -> Response:
            job = job_submit(team=actor.team, user=actor.user, params=full_quality_params(source), api_key=actor.api_key)
            return Response(VideoSerializer(job, context={"request": request}).data, status=status.HTTP_201_CREATED)

        return respond_once(request, team=actor.team, respond=rerun, refused=refusal_response)


class VideoCancel(APIView):
    """Cancel a job: a queued one leaves the queue, a running one stops at its next step;
    its credits return. 409 if it has already ended."""

    @extend_schema(
        operation_id="cancel_video", request=None, responses={200: VideoSerializer, **errors(401, 403, 404, 409)}
    )
    def post(self, request, job_id):
        actor = request_actor_allowed(request, Perm.GENERATE)
        job = job_for_team(actor.team, job_id)
        try:
            job = job_cancel(job.id)
        except InvalidTransition:
            raise Refusal(f"The job has already ended ({job.state}); there is nothing to cancel.", status=409, code="conflict") from None
        return Response(VideoSerializer(job, context={"request": request}).data)


class ModelList(APIView):
    """What can be generated, with each model's limits and defaults."""

    @extend_schema(operation_id="list_models", responses={200: OpenApiTypes.OBJECT, **errors(401, 403)})
    def get(self, request):
        request_actor_allowed(request, Perm.VIEW)
        return Response({"data": [model_json(spec) for spec in catalog.available_models()]})


def speed_json(spec, speed: str) -> dict:
    """A speed as offered for `spec`: what it does, the steps and guidance it runs (or the
    defaults), its price per step relative to standard, and its price at the defaults."""
    steps, guidance = spec.steps_and_guidance(speed) or (spec.defaults["steps"], spec.defaults["guidance"])
    defaults = JobParams(
        model_name=spec.name, prompt="", negative_prompt="", seed=None, width=spec.defaults["width"],
        height=spec.defaults["height"], num_frames=spec.defaults["num_frames"], fps=spec.defaults["fps"],
        steps=steps, guidance=guidance, speed=speed,
    )
    return {
        "id": speed,
        "note": catalog.SPEED_NOTES[speed],
        "steps": steps,
        "guidance": guidance,
        "fixes_steps_and_guidance": spec.steps_and_guidance(speed) is not None,
        "price_factor_per_step": spec.speed_price_factor(speed),
        "price_credits_at_defaults": job_quote(defaults),
    }


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
        "speeds": list(spec.offered_speeds()),
        "speed_options": [speed_json(spec, speed) for speed in spec.offered_speeds()],
        "remix": bool(spec.remix_pipeline),
        "pipeline": spec.pipeline,
        "pool": next((pool.name for pool in pools.pools_for_model(spec.name)), None),
    }


class LoraSerializer(serializers.Serializer):
    """A team LoRA (documentation: generation.loras.lora_json builds it)."""

    id = serializers.UUIDField()
    name = serializers.CharField()
    model = serializers.CharField()
    rank = serializers.IntegerField()
    modules = serializers.IntegerField(help_text="Layers it adapts.")
    size_bytes = serializers.IntegerField()
    sha256 = serializers.CharField()
    created_at = serializers.DateTimeField()


LORA_OBJECT = LoraSerializer


class LoraUploadSerializer(serializers.Serializer):
    """The upload's fields (documentation: generation.loras checks them)."""

    file = serializers.FileField(
        help_text="A LoRA in .safetensors format (pickle-based .ckpt/.pt/.bin are refused): diffusers' "
        "transformer.<module>.lora_A/lora_B names or the original Wan diffusion_model.<module>.lora_down/lora_up "
        "ones, F16, BF16 or F32, rank and size within the plan's limits (GET /account)."
    )
    name = serializers.CharField(max_length=team_loras.MAX_NAME_CHARS, help_text="Unique in the team.")
    model = serializers.CharField(help_text="The model it was trained for (GET /models).")


class LoraListCreate(APIView):
    """The team's LoRAs. Members list and use them; owners and admins (and API keys) upload
    and delete them."""

    parser_classes = [MultiPartParser]

    def initialize_request(self, request, *args, **kwargs):
        # Counts the file while Django reads it and stops past the team plan's size, which
        # post() sets before reading the body (a browser session's CSRF check reads it
        # earlier, stopped past the most any plan stores; the plan's size is checked after).
        if request.method == "POST":
            self.size_limit = team_loras.SizeLimitHandler(request=request)
            request.upload_handlers.insert(0, self.size_limit)
        return super().initialize_request(request, *args, **kwargs)

    @extend_schema(operation_id="list_loras", responses={200: inline_serializer("LoraList", {"data": LoraSerializer(many=True)}), **errors(401, 403)},
                   parameters=[OpenApiParameter("model", OpenApiTypes.STR, description="Only this model's.")])
    def get(self, request):
        actor = request_actor_allowed(request, Perm.VIEW)
        loras = team_loras.loras_for_team(actor.team, model_name=request.query_params.get("model") or None)
        return Response({"data": [team_loras.lora_json(lora) for lora in loras]})

    @extend_schema(
        operation_id="create_lora",
        request={"multipart/form-data": LoraUploadSerializer},
        responses={201: LORA_OBJECT, **errors(400, 401, 403, 413)},
    )
    def post(self, request):
        actor = request_actor_allowed(request, Perm.MANAGE_LORAS)
        self.size_limit.limit = team_loras.upload_limit_checked(actor.team)
        lora = team_loras.lora_create(
            team=actor.team, user=actor.user, name=request.data.get("name"), model_name=request.data.get("model"),
            upload=request.FILES.get("file"),
        )
        return Response(team_loras.lora_json(lora), status=status.HTTP_201_CREATED)


class LoraDetail(APIView):
    @extend_schema(operation_id="get_lora", responses={200: LORA_OBJECT, **errors(401, 403, 404)})
    def get(self, request, lora_id):
        actor = request_actor_allowed(request, Perm.VIEW)
        return Response(team_loras.lora_json(team_loras.lora_for_team(actor.team, lora_id)))

    @extend_schema(operation_id="delete_lora", responses={204: None, **errors(401, 403, 404)})
    def delete(self, request, lora_id):
        """Delete a LoRA: it can no longer be asked for; videos waiting for it still get it
        (its file goes once they have run)."""
        actor = request_actor_allowed(request, Perm.MANAGE_LORAS)
        team_loras.lora_delete(team_loras.lora_for_team(actor.team, lora_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class NotFound(APIView):
    """Any other path under /api/: the API's JSON 404, not the site's HTML page."""

    permission_classes: list = []
    authentication_classes: list = []

    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        raise Http404("No such API endpoint. See /api/docs/.")

    post = put = patch = delete = get
