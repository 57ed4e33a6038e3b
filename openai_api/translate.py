"""OpenAI Videos API shapes ⇄ Framecast jobs.

The request rules are Framecast's own (generation.forms.JobForm, the model registry, the
plan's quotas): this module only renames what the `openai` SDK sends and what it expects
back (openai/types/video.py, video_create_params.py).
"""

import re

from django.conf import settings

from core.errors import Refusal
from core.text import is_blank
from generation import catalog, payloads
from generation.forms import JobForm
from generation.inputs import reference_image_png
from generation.loras import with_loras
from generation.models import Job
from generation.params import JobParams

from .converters import video_id

SIZE = re.compile(r"^\s*(\d{1,5})\s*[xX×]\s*(\d{1,5})\s*$")
DEFAULT_SECONDS = 4

STATUS = {
    Job.State.THROTTLED: "queued",
    Job.State.QUEUED: "queued",
    Job.State.RUNNING: "in_progress",
    Job.State.ENCODING: "in_progress",
    Job.State.SUCCEEDED: "completed",
    Job.State.FAILED: "failed",
    Job.State.CANCELLED: "failed",
}

# Framecast's field names (JobForm, plan refusals), by the OpenAI parameter that set them.
PARAM_OF_FIELD = {"width": "size", "height": "size", "num_frames": "seconds", "fps": "seconds", "model": "model",
                  "prompt": "prompt", "steps": "model"}


def param_for(field: str | None) -> str | None:
    """The OpenAI parameter to name for an error about Framecast's `field`."""
    return PARAM_OF_FIELD.get(field, field)


class BadParam(Refusal):
    """A request parameter OpenAI's API would call invalid; `param` is OpenAI's name."""

    code = "invalid_value"

    def __init__(self, message: str, param: str | None, *, status: int = 400, code: str | None = None):
        super().__init__(message, status=status, code=code, field=param)


def model_name(requested: str | None) -> str:
    """Framecast's own model names as they are; OpenAI's (`sora-2`, `sora-2-pro`, dated
    versions) run on FRAMECAST_OPENAI_DEFAULT_MODEL so that old code works unchanged."""
    requested = (requested or "").strip()
    if not requested or requested.startswith("sora"):
        return settings.FRAMECAST_OPENAI_DEFAULT_MODEL or catalog.default_model().name
    return requested


def _one(data, name: str):
    value = data.get(name)
    if isinstance(value, list | dict):
        raise BadParam(f"'{name}' must be a single value.", name)
    return value


def create_params(data, files, *, team) -> JobParams:
    """The job a `POST /videos` asks for. Raises BadParam naming the OpenAI parameter (and,
    for `loras`, generation.loras' refusals naming `loras[i].id` or `.scale`; 404 for an id
    the team has no LoRA of)."""
    prompt = _one(data, "prompt")
    if not isinstance(prompt, str) or is_blank(prompt):
        raise BadParam("'prompt' is required: describe the video.", "prompt")
    name = model_name(_one(data, "model"))
    spec = catalog.get_model(name)
    if spec is None:
        offered = ", ".join(model.name for model in catalog.available_models())
        raise BadParam(f"The model '{name}' does not exist or is not offered here. Available: {offered}.", "model",
                       code="model_not_found")
    fps = spec.defaults["fps"]
    size = _one(data, "size")
    if size in (None, ""):
        width, height = spec.defaults["width"], spec.defaults["height"]
    else:
        match = SIZE.match(str(size))
        if not match:
            raise BadParam(f"'size' must be WIDTHxHEIGHT, for example '{spec.defaults['width']}x{spec.defaults['height']}' "
                           f"(got '{size}').", "size")
        width, height = int(match[1]), int(match[2])
    seconds = _one(data, "seconds")
    longest = (spec.max_frames - 1) / fps
    if seconds in (None, ""):
        # OpenAI's default length where the model makes it, else the model's own default.
        seconds = DEFAULT_SECONDS if DEFAULT_SECONDS <= longest else spec.defaults["num_frames"] / fps
    try:
        seconds = float(seconds)
    except (TypeError, ValueError):
        raise BadParam(f"'seconds' must be a number of seconds (got '{seconds}').", "seconds") from None
    if not 0 < seconds <= longest:
        raise BadParam(f"'seconds' must be more than 0 and at most {longest:g} for {spec.name} (got {seconds:g}).",
                       "seconds")
    # Framecast's extra field: `speed` (standard, fast, turbo: see GET /api/v1/models).
    speed = _one(data, "speed")
    form = JobForm(data={
        "prompt": prompt, "model": spec.name, "width": width, "height": height, "fps": fps,
        "num_frames": catalog.frames_for_duration(spec, seconds, fps), "speed": speed or "",
    })
    if not form.is_valid():
        field, messages = next(iter(form.errors.items()))
        raise BadParam(messages[0], param_for(field))
    params = form.params()
    reference = files.get("input_reference") if files else None
    if reference is None and _one(data, "input_reference") not in (None, ""):
        raise BadParam("'input_reference' must be an image file sent as multipart/form-data.", "input_reference")
    if reference is not None:
        try:
            image = reference_image_png(reference.read(), model_name=spec.name, field="input_reference")
        except Refusal as refusal:
            raise BadParam(refusal.message, "input_reference") from None
        params = params.replace(input_image=image)
    # Framecast's extra field: `loras`, [{"id", "scale"}] (a JSON string in multipart form data).
    return with_loras(params, team, data.get("loras"))


def video_object(job: Job) -> dict:
    """A job as the SDK's `Video`."""
    status = STATUS[job.state]
    if job.state == Job.State.SUCCEEDED:
        progress = 100
    elif job.state == Job.State.ENCODING:
        progress = 99
    elif job.state == Job.State.RUNNING:
        progress = min(98, payloads.progress(job)["percent"])
    else:
        progress = 0
    error = None
    if job.state == Job.State.FAILED:
        error = {"code": "generation_failed", "message": job.error_message or "The video could not be generated."}
    elif job.state == Job.State.CANCELLED:
        error = {"code": "cancelled", "message": "The video was cancelled; its credits were returned."}
    return {
        "id": video_id(job.id),
        "object": "video",
        "status": status,
        "progress": progress,
        "created_at": int(job.created_at.timestamp()),
        "completed_at": int(job.finished_at.timestamp()) if job.finished_at and job.is_terminal else None,
        # Videos are kept until deleted.
        "expires_at": None,
        "model": job.model_name,
        "seconds": f"{job.duration_seconds:g}",
        "size": f"{job.width}x{job.height}",
        "prompt": job.prompt,
        "error": error,
        "remixed_from_video_id": video_id(job.remixed_from_id) if job.remixed_from_id else None,
    }
