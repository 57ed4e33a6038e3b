"""The video models Framecast offers and the limits each one puts on a request.

Plain data, no torch: the web tier validates and prices requests with it, the GPU worker
reads the weights path from it. A model is offered only when its weights are configured.
"""

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings


@dataclass(frozen=True)
class ModelSpec:
    name: str
    label: str
    # Spatial sizes must be multiples of this (VAE downsampling × transformer patch size).
    size_multiple: int
    min_side: int
    max_side: int
    # Wan-family models take 4k+1 frames (the VAE compresses time by 4, plus the first frame).
    frame_step: int
    max_frames: int
    max_steps: int
    max_pixels_per_frame: int
    defaults: dict
    # Price per unit of work relative to the reference model (billing/pricing.py).
    credit_factor: float = 1.0

    def weights_path(self) -> Path:
        if self.name == "framecast-tiny":
            return settings.FRAMECAST_MODELS_DIR / "framecast-tiny"
        return Path(settings.WAN21_T2V_1_3B_PATH)

    def is_available(self) -> bool:
        return self.name == "framecast-tiny" or bool(settings.WAN21_T2V_1_3B_PATH)


TINY = ModelSpec(
    name="framecast-tiny",
    label="Framecast Tiny (CPU, for development)",
    size_multiple=16,
    min_side=32,
    max_side=256,
    frame_step=4,
    max_frames=33,
    max_steps=50,
    max_pixels_per_frame=256 * 256,
    defaults={"width": 128, "height": 128, "num_frames": 17, "fps": 8, "steps": 20, "guidance": 5.0},
)

WAN21_T2V_1_3B = ModelSpec(
    name="wan2.1-t2v-1.3b",
    label="Wan 2.1 text-to-video 1.3B",
    size_multiple=16,
    min_side=256,
    max_side=1280,
    frame_step=4,
    max_frames=81,
    max_steps=100,
    max_pixels_per_frame=1280 * 720,
    defaults={"width": 832, "height": 480, "num_frames": 81, "fps": 16, "steps": 50, "guidance": 5.0},
)

_ALL = {spec.name: spec for spec in (TINY, WAN21_T2V_1_3B)}

MIN_FPS, MAX_FPS = 1, 30
MIN_GUIDANCE, MAX_GUIDANCE = 0.0, 20.0
MAX_SEED = 2**32 - 1
MAX_PROMPT_CHARS = 2000


def available_models() -> list[ModelSpec]:
    return [spec for spec in _ALL.values() if spec.is_available()]


def get_model(name: str) -> ModelSpec | None:
    spec = _ALL.get(name)
    return spec if spec is not None and spec.is_available() else None


def default_model() -> ModelSpec:
    spec = get_model(settings.FRAMECAST_DEFAULT_MODEL)
    if spec is None:
        raise LookupError(f"FRAMECAST_DEFAULT_MODEL={settings.FRAMECAST_DEFAULT_MODEL!r} is not an available model.")
    return spec


def shape_errors(spec: ModelSpec, *, width: int, height: int, num_frames: int, steps: int) -> dict[str, str]:
    """What is wrong with a request's shape for this model, by field name."""
    errors: dict[str, str] = {}
    for field, value in (("width", width), ("height", height)):
        if not spec.min_side <= value <= spec.max_side:
            errors[field] = (
                f"{field.capitalize()} must be between {spec.min_side} and {spec.max_side} pixels "
                f"for {spec.name} (got {value})."
            )
        elif value % spec.size_multiple:
            errors[field] = f"{field.capitalize()} must be a multiple of {spec.size_multiple} pixels (got {value})."
    if "width" not in errors and "height" not in errors and width * height > spec.max_pixels_per_frame:
        errors["width"] = f"Width × height may be at most {spec.max_pixels_per_frame} pixels for {spec.name}."
    if not 1 <= num_frames <= spec.max_frames:
        errors["num_frames"] = f"Frames must be between 1 and {spec.max_frames} for {spec.name} (got {num_frames})."
    elif (num_frames - 1) % spec.frame_step:
        errors["num_frames"] = (
            f"Frames must be {spec.frame_step}×k+1 (for example 9, 17, 33) for {spec.name} (got {num_frames})."
        )
    if not 1 <= steps <= spec.max_steps:
        errors["steps"] = f"Inference steps must be between 1 and {spec.max_steps} for {spec.name} (got {steps})."
    return errors
