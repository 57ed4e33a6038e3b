"""`/openai/v1/`: OpenAI's Videos API (the Sora API) on Framecast's platform.

The official `openai` SDK works against it by changing `base_url` and the key. Underneath
it is the same as `/api/v1/`: the same jobs, credits, quotas, rate limits, moderation,
priorities and tenant isolation (generation.services, accounts.permissions).
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import ApiKeyAuthentication, IsTeamActor
from accounts.permissions import Perm, require
from accounts.selectors import request_actor
from billing.rate_limits import PlanRequestThrottle, PlanVideoThrottle
from core import outages
from core.cleaning import body_limit_refusal
from core.errors import Refusal, as_refusal
from core.parsers import FormParser, JSONParser, MultiPartParser
from core.request_id import current_request_id
from core.text import whole_number
from generation import catalog
from generation.api import speed_json
from generation.idempotency import respond_once
from generation.inputs import remix_params
from generation.models import Job
from generation.ranges import file_response
from generation.selectors import job_for_team
from generation.services import InvalidTransition, job_cancel, job_delete, job_submit

from .converters import job_id as parse_video_id
from .converters import video_id
from .translate import BadParam, create_params, param_for, video_object

# How often the SDK's create_and_poll asks again (it reads this header).
POLL_AFTER_MS = 500
MAX_LIMIT = 100

ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 403: "invalid_request_error",
               404: "invalid_request_error", 409: "invalid_request_error", 429: "rate_limit_error"}


def openai_error(status_code: int, message: str, *, param=None, code=None, error_type=None, headers=None) -> Response:
    body = {
        "message": message,
        "type": error_type or ERROR_TYPES.get(status_code, "server_error" if status_code >= 500 else "invalid_request_error"),
        "param": param,
        "code": code,
        "request_id": current_request_id.get(),
    }
    return Response({"error": body}, status=status_code, headers=headers)


def refusal_error(refusal: Refusal) -> Response:
    """Framecast's refusals in the codes OpenAI clients already handle: an exhausted balance
    is OpenAI's 429 `insufficient_quota`; a budget's lock is a 429 `budget_exceeded` (as OpenAI
    answers a project's spend limit), which the SDK is told not to retry: it lifts only when
    the period resets or the budget is raised."""
    if refusal.code == "budget_exceeded":
        return openai_error(429, refusal.message, code="budget_exceeded", error_type="insufficient_quota",
                            headers={"x-should-retry": "false"})
    if refusal.status == 402:
        return openai_error(429, refusal.message, code="insufficient_quota", error_type="insufficient_quota")
    if refusal.field and refusal.status == 403:
        # Above the plan's size, length or steps: OpenAI calls a parameter out of range a 400.
        return openai_error(400, refusal.message, param=param_for(refusal.field), code=refusal.code)
    return openai_error(refusal.status, refusal.message, param=param_for(refusal.field), code=refusal.code)


def exception_handler(error, context):
    if outages.database_unavailable(error):  # an outage: the SDK retries a 503 after Retry-After
        headers = {"Retry-After": str(outages.RETRY_AFTER_SECONDS)}
        return openai_error(503, outages.MESSAGE, code="service_unavailable", headers=headers)
    error = body_limit_refusal(error) or error  # Django's 400 for a body over its limit
    if isinstance(error, DjangoValidationError):
        error = as_refusal(error)
    if isinstance(error, Refusal):
        return refusal_error(error)
    if isinstance(error, Http404):
        return openai_error(404, str(error) or "No such video.", code="not_found")
    if isinstance(error, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        return openai_error(401, str(error.detail), code="invalid_api_key")
    if isinstance(error, exceptions.Throttled):
        headers = {"Retry-After": str(int(error.wait or 1))}
        return openai_error(429, str(error.detail), code="rate_limit_exceeded", headers=headers)
    if isinstance(error, exceptions.PermissionDenied):
        return openai_error(403, str(error.detail), code="permission_denied")
    if isinstance(error, exceptions.ParseError | exceptions.UnsupportedMediaType):
        return openai_error(400, str(error.detail), code="invalid_body")
    if isinstance(error, exceptions.MethodNotAllowed):
        return openai_error(405, str(error.detail), code="method_not_allowed")
    if isinstance(error, exceptions.APIException):
        return openai_error(error.status_code, str(error.detail))
    return None  # a real bug: Django reports it as a 500


@extend_schema(exclude=True)  # OpenAI documents these shapes; /api/schema/ is Framecast's own API
class OpenAIView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsTeamActor]
    throttle_classes = [PlanRequestThrottle, PlanVideoThrottle]
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_exception_handler(self):
        return exception_handler

    def actor(self, perm: Perm):
        actor = request_actor(self.request)
        require(actor, perm)
        return actor

    def job(self, actor, job_id) -> Job:
        return job_for_team(actor.team, job_id)


class Models(OpenAIView):
    """`GET /models` as OpenAI's SDK reads it (`client.models.list()`), each model with
    Framecast's extra fields: its speeds, each with its note, steps, guidance and price."""

    def get(self, request):
        self.actor(Perm.VIEW)
        data = [
            {
                "id": spec.name,
                "object": "model",
                "created": 0,
                "owned_by": "framecast",
                "speeds": list(spec.offered_speeds()),
                "speed_options": [speed_json(spec, speed) for speed in spec.offered_speeds()],
            }
            for spec in catalog.available_models()
        ]
        return Response({"object": "list", "data": data})


class Videos(OpenAIView):
    def post(self, request):
        actor = self.actor(Perm.GENERATE)

        def create() -> Response:
            params = create_params(request.data, request.FILES, team=actor.team)
            job = job_submit(team=actor.team, user=actor.user, params=params, api_key=actor.api_key)
            return Response(video_object(job), headers={"openai-poll-after-ms": str(POLL_AFTER_MS)})

        return respond_once(request, team=actor.team, respond=create, refused=refusal_error)

    def get(self, request):
        """Newest first unless `order=asc`; `after` a video id; `limit` 1 to 100 (20)."""
        actor = self.actor(Perm.VIEW)
        query = request.query_params
        order = query.get("order", "desc")
        if order not in ("asc", "desc"):
            return openai_error(400, f"'order' must be 'asc' or 'desc' (got '{order}').", param="order")
        limit = query.get("limit", "20")
        if not 1 <= (whole_number(limit) or 0) <= MAX_LIMIT:
            return openai_error(400, f"'limit' must be a whole number from 1 to {MAX_LIMIT} (got '{limit}').", param="limit")
        sign = "" if order == "asc" else "-"
        jobs = Job.objects.filter(team=actor.team).order_by(f"{sign}created_at", f"{sign}id")
        if "after" in query:
            after_id = parse_video_id(query["after"])
            after = Job.objects.filter(team=actor.team, pk=after_id).first() if after_id else None
            if after is None:
                return openai_error(404, f"No video '{query['after']}' to list after.", param="after", code="not_found")
            beyond = "gt" if order == "asc" else "lt"
            jobs = jobs.filter(
                Q(**{f"created_at__{beyond}": after.created_at}) | Q(created_at=after.created_at, **{f"id__{beyond}": after.id})
            )
        page = list(jobs[: int(limit) + 1])
        more, page = len(page) > int(limit), page[: int(limit)]
        data = [video_object(job) for job in page]
        return Response({
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": more,
        })


class Video(OpenAIView):
    def get(self, request, job_id):
        job = self.job(self.actor(Perm.VIEW), job_id)
        headers = {} if job.is_terminal else {"openai-poll-after-ms": str(POLL_AFTER_MS)}
        return Response(video_object(job), headers=headers)

    def delete(self, request, job_id):
        """Deletes the video and its files; one still queued or rendering is cancelled first
        (its credits return), as the Sora API has no separate cancel."""
        job = self.job(self.actor(Perm.GENERATE), job_id)
        if not job.is_terminal:
            try:
                job = job_cancel(job.id)
            except InvalidTransition:
                job.refresh_from_db()  # it ended meanwhile: delete it as it is
        deleted = video_id(job.id)
        job_delete(job)
        return Response({"id": deleted, "object": "video.deleted", "deleted": True})


VARIANTS = {
    "video": ("video", "video/mp4", "mp4"),
    "thumbnail": ("poster", "image/jpeg", "jpg"),
    "spritesheet": ("spritesheet", "image/jpeg", "jpg"),
}


class AnyAccept(BaseContentNegotiation):
    """The SDK asks for `Accept: application/binary`; the answer is the file (or a JSON error)."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class VideoContent(OpenAIView):
    content_negotiation_class = AnyAccept

    def get(self, request, job_id):
        job = self.job(self.actor(Perm.VIEW), job_id)
        variant = request.query_params.get("variant", "video")
        if variant not in VARIANTS:
            return openai_error(400, f"'variant' must be one of {', '.join(VARIANTS)} (got '{variant}').", param="variant")
        field, content_type, extension = VARIANTS[variant]
        if job.state != Job.State.SUCCEEDED:
            return openai_error(404, f"The video is not ready: it is {video_object(job)['status']}.", code="not_ready")
        file = getattr(job, field)
        if not file:
            return openai_error(404, f"This video has no {variant} (it was made before {variant}s were kept).",
                                param="variant", code="not_found")
        return file_response(request, file, content_type=content_type, filename=f"{video_id(job.id)}.{extension}")


class VideoRemix(OpenAIView):
    def post(self, request, job_id):
        actor = self.actor(Perm.GENERATE)
        source = self.job(actor, job_id)
        prompt = request.data.get("prompt") if hasattr(request.data, "get") else None
        strength = request.data.get("strength") if hasattr(request.data, "get") else None
        try:
            strength = None if strength in (None, "") else float(strength)
        except (TypeError, ValueError):
            raise BadParam("'strength' must be a number more than 0 and at most 1.", "strength") from None

        def remix() -> Response:
            params = remix_params(source, prompt=prompt if isinstance(prompt, str) else "", strength=strength)
            job = job_submit(team=actor.team, user=actor.user, params=params, api_key=actor.api_key)
            return Response(video_object(job), status=status.HTTP_200_OK, headers={"openai-poll-after-ms": str(POLL_AFTER_MS)})

        return respond_once(request, team=actor.team, respond=remix, refused=refusal_error)


class NotFound(OpenAIView):
    permission_classes = []
    throttle_classes = []

    def dispatch_any(self, request, *args, **kwargs):
        return openai_error(404, f"Unknown route {request.method} {request.path}.", code="unknown_route")

    get = post = put = patch = delete = dispatch_any
