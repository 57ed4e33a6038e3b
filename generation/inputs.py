"""Inputs beyond the prompt: remixes of a finished video and reference images.

The rules live here once, for the native API, the OpenAI-compatible API and the studio.
Plain Pillow, no torch: the web tier checks an image before any credit is held.
"""

import io

from PIL import Image, UnidentifiedImageError

from core.errors import InvalidInput, Refusal
from core.text import is_blank

from . import catalog
from .loras import loras_again
from .models import Job
from .params import JobParams

DEFAULT_REMIX_STRENGTH = 0.6
MAX_IMAGE_BYTES = 10 * 2**20
MAX_IMAGE_SIDE = 4096
IMAGE_FORMATS = {"PNG", "JPEG", "WEBP"}


def remix_params(
    source: Job, *, prompt: str, strength: float | None = None, seed: int | None = None
) -> JobParams:
    """A remix re-generates a finished video's frames with a new prompt: the same model,
    shape and settings; `strength` (0-1] is how far it may move from the source.
    Raises a core.errors.Refusal naming the problem."""
    if source.state != Job.State.SUCCEEDED or not source.video:
        raise Refusal(f"Only a finished video can be remixed; this one is {source.state}.", status=409, code="not_finished")
    spec = catalog.get_model(source.model_name)
    if spec is None or not spec.remix_pipeline:
        raise InvalidInput(
            f"The model {source.model_name} cannot remix videos.", code="remix_unsupported", field="model"
        )
    prompt = (prompt or "").strip()
    if is_blank(prompt):
        raise InvalidInput("Prompt is required: describe the remix.", code="invalid_request", field="prompt")
    if len(prompt) > catalog.MAX_PROMPT_CHARS:
        raise InvalidInput(
            f"Prompt may be at most {catalog.MAX_PROMPT_CHARS} characters.", code="invalid_request", field="prompt"
        )
    strength = DEFAULT_REMIX_STRENGTH if strength is None else strength
    if not isinstance(strength, int | float) or isinstance(strength, bool) or not 0 < strength <= 1:
        raise InvalidInput(
            "Strength must be a number more than 0 and at most 1.", code="invalid_request", field="strength"
        )
    if catalog.remix_denoising_steps(source.steps, strength) < 1:
        raise InvalidInput(
            f"Strength must be at least {catalog.least_remix_strength(source.steps):g} to remix this video: a remix "
            f"runs strength × steps denoising steps, and {strength:g} × {source.steps} is less than one.",
            code="invalid_request", field="strength",
        )
    # Standard whatever the source's: diffusers' WanVideoToVideoPipeline opens no cache
    # context, so the fast mode's First-Block Cache fails in it (tests/test_pipeline_fuzz.py);
    # a turbo source's 4 unguided steps mean nothing without its adapter: the model's own.
    return JobParams.from_job(
        source, prompt=prompt, seed=seed, speed="standard", remix_of=source, strength=float(strength),
        **_standard_steps(source, spec),
        loras=loras_again(source),  # the same team LoRAs, if they are still there
    )


def _standard_steps(source: Job, spec: catalog.ModelSpec) -> dict:
    """The steps and guidance of `source` at the standard speed: its own, unless its speed
    fixed them (turbo), then the model's defaults."""
    if source.speed != "turbo":
        return {}
    return {"steps": spec.defaults["steps"], "guidance": spec.defaults["guidance"]}


def full_quality_params(source: Job) -> JobParams:
    """The same video again at the model's full quality: the same prompt, seed, size,
    length, reference image, remix source and LoRAs, at the standard speed with the model's
    default steps and guidance (a turbo video's one-click re-render). Raises a Refusal."""
    if source.speed == "standard":
        raise Refusal("This video is already at full quality (the standard speed).", status=409, code="already_full_quality")
    spec = catalog.get_model(source.model_name)
    if spec is None:
        raise InvalidInput(f"The model {source.model_name} is not available.", code="model_unavailable", field="model")
    params = JobParams.from_job(source, speed="standard", loras=loras_again(source), **_standard_steps(source, spec))
    if source.input_image:
        with source.input_image.open("rb") as file:
            params = params.replace(input_image=file.read())
    return params


def reference_image_png(data: bytes, *, model_name: str, field: str = "input_image") -> bytes:
    """A reference image checked and stored as PNG (EXIF orientation applied, RGB).
    Raises a core.errors.Refusal naming `field`."""
    spec = catalog.get_model(model_name)
    if spec is None or not spec.image_pipeline:
        raise InvalidInput(
            f"The model {model_name} does not take a reference image.", code="image_unsupported", field=field
        )
    if not data:
        raise InvalidInput("The reference image is empty.", code="invalid_request", field=field)
    if len(data) > MAX_IMAGE_BYTES:
        raise InvalidInput(
            f"The reference image may be at most {MAX_IMAGE_BYTES // 2**20} MB.", code="invalid_request", field=field
        )
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format
            if kind not in IMAGE_FORMATS:
                raise InvalidInput(
                    f"The reference image must be PNG, JPEG or WebP (got {kind}).", code="invalid_request", field=field
                )
            if max(image.size) > MAX_IMAGE_SIDE:
                raise InvalidInput(
                    f"The reference image may be at most {MAX_IMAGE_SIDE} pixels on a side (got {image.width}×{image.height}).",
                    code="invalid_request", field=field,
                )
            from PIL import ImageOps

            picture = ImageOps.exif_transpose(image).convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise InvalidInput(
            "The reference image could not be read: send a PNG, JPEG or WebP file.", code="invalid_request", field=field
        ) from None
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()
