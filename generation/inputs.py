"""Inputs beyond the prompt: remixes of a finished video and reference images.

The rules live here once, for the native API, the OpenAI-compatible API and the studio.
Plain Pillow, no torch: the web tier checks an image before any credit is held.
"""

import io

from PIL import Image, UnidentifiedImageError

from billing.quotas import SubmissionRefused

from . import catalog
from .models import Job
from .services import JobParams

DEFAULT_REMIX_STRENGTH = 0.6
MAX_IMAGE_BYTES = 10 * 2**20
MAX_IMAGE_SIDE = 4096
IMAGE_FORMATS = {"PNG", "JPEG", "WEBP"}


def remix_params(
    source: Job, *, prompt: str, strength: float | None = None, seed: int | None = None
) -> JobParams:
    """A remix re-generates a finished video's frames with a new prompt: the same model,
    shape and settings; `strength` (0-1] is how far it may move from the source.
    Raises SubmissionRefused naming the problem."""
    if source.state != Job.State.SUCCEEDED or not source.video:
        raise SubmissionRefused(
            f"Only a finished video can be remixed; this one is {source.state}.", status=409, code="not_finished"
        )
    spec = catalog.get_model(source.model_name)
    if spec is None or not spec.remix_pipeline:
        raise SubmissionRefused(
            f"The model {source.model_name} cannot remix videos.", status=400, code="remix_unsupported", field="model"
        )
    prompt = (prompt or "").strip()
    if not prompt:
        raise SubmissionRefused("Prompt is required: describe the remix.", status=400, code="invalid_request", field="prompt")
    if len(prompt) > catalog.MAX_PROMPT_CHARS:
        raise SubmissionRefused(
            f"Prompt may be at most {catalog.MAX_PROMPT_CHARS} characters.", status=400, code="invalid_request", field="prompt"
        )
    strength = DEFAULT_REMIX_STRENGTH if strength is None else strength
    if not isinstance(strength, int | float) or isinstance(strength, bool) or not 0 < strength <= 1:
        raise SubmissionRefused(
            "Strength must be a number more than 0 and at most 1.", status=400, code="invalid_request", field="strength"
        )
    if catalog.remix_denoising_steps(source.steps, strength) < 1:
        raise SubmissionRefused(
            f"Strength must be at least {catalog.least_remix_strength(source.steps):g} to remix this video: a remix "
            f"runs strength × steps denoising steps, and {strength:g} × {source.steps} is less than one.",
            status=400, code="invalid_request", field="strength",
        )
    return JobParams(
        prompt=prompt,
        negative_prompt=source.negative_prompt,
        model_name=source.model_name,
        seed=seed,
        width=source.width,
        height=source.height,
        num_frames=source.num_frames,
        fps=source.fps,
        steps=source.steps,
        guidance=source.guidance,
        # Standard whatever the source's: diffusers' WanVideoToVideoPipeline opens no cache
        # context, so the fast mode's First-Block Cache fails in it (tests/test_pipeline_fuzz.py).
        speed="standard",
        remix_of=source,
        strength=float(strength),
    )


def reference_image_png(data: bytes, *, model_name: str, field: str = "input_image") -> bytes:
    """A reference image checked and stored as PNG (EXIF orientation applied, RGB).
    Raises SubmissionRefused naming `field`."""
    spec = catalog.get_model(model_name)
    if spec is None or not spec.image_pipeline:
        raise SubmissionRefused(
            f"The model {model_name} does not take a reference image.", status=400, code="image_unsupported", field=field
        )
    if not data:
        raise SubmissionRefused("The reference image is empty.", status=400, code="invalid_request", field=field)
    if len(data) > MAX_IMAGE_BYTES:
        raise SubmissionRefused(
            f"The reference image may be at most {MAX_IMAGE_BYTES // 2**20} MB.", status=400, code="invalid_request", field=field
        )
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format
            if kind not in IMAGE_FORMATS:
                raise SubmissionRefused(
                    f"The reference image must be PNG, JPEG or WebP (got {kind}).", status=400, code="invalid_request", field=field
                )
            if max(image.size) > MAX_IMAGE_SIDE:
                raise SubmissionRefused(
                    f"The reference image may be at most {MAX_IMAGE_SIDE} pixels on a side (got {image.width}×{image.height}).",
                    status=400, code="invalid_request", field=field,
                )
            from PIL import ImageOps

            picture = ImageOps.exif_transpose(image).convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise SubmissionRefused(
            "The reference image could not be read: send a PNG, JPEG or WebP file.", status=400, code="invalid_request", field=field
        ) from None
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()
