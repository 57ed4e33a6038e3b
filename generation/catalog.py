"""The video models Framecast offers and the limits each one puts on a request.

Each model is declared once, as data (generation/models.toml, or FRAMECAST_MODELS_FILE):
its diffusers pipeline class, where its weights are, its dtypes, sizes, frames, steps and
speed options. Plain data, no torch: the web tier validates and prices requests with it,
the GPU worker loads the weights with it. A model is offered only when its weights are
configured on this machine.
"""

import os
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from django.conf import settings

from billing.pricing import SPEED_FACTORS

SPEEDS = ("standard", "fast", "turbo")

# What the studio, the API and the OpenAI layer say about each speed.
SPEED_NOTES = {
    "standard": "the model's full quality",
    "fast": "skips the transformer's work on steps that barely change: cheaper and sooner, a little less detail",
    "turbo": "fewer steps: faster and cheaper, may lose fine motion",
}


def _local_path(path_setting: str, env: str) -> Path | None:
    """A path in the repository (relative or absolute), or the local path an environment
    variable (or the setting of that name) holds; None when neither is configured."""
    if path_setting:
        path = Path(path_setting)
        return path if path.is_absolute() else settings.BASE_DIR / path
    # A setting of that name wins (settings.py reads the known ones from the environment);
    # one added only in FRAMECAST_MODELS_FILE is configured straight from the environment.
    configured = getattr(settings, env, None)
    if configured is None:
        configured = os.environ.get(env, "")
    return Path(configured) if configured else None


@dataclass(frozen=True)
class AdapterSpec:
    """A LoRA adapter the registry declares for a model: the distillation weights behind
    its `turbo` speed. The worker loads it onto the model's warm pipeline (never reloading
    the base model) and runs `steps` steps at `guidance` (1.0: no classifier-free guidance,
    one transformer pass per step instead of two), with the flow-matching scheduler's
    `shift` set to `flow_shift` for that job when given."""

    steps: int
    guidance: float
    # Price per step relative to a standard step of the same model (billing/pricing.py):
    # no guidance halves the transformer's passes; the adapter's own matmuls add a little.
    price_factor: float
    weights_path_setting: str = ""
    weights_env: str = ""
    # The safetensors file in that folder (diffusers' LoRA format).
    weight_name: str = "pytorch_lora_weights.safetensors"
    flow_shift: float | None = None
    # The adapter's weight when applied (diffusers set_adapters).
    scale: float = 1.0

    def weights_path(self) -> Path | None:
        return _local_path(self.weights_path_setting, self.weights_env)

    def weights_file(self) -> Path | None:
        folder = self.weights_path()
        return None if folder is None else folder / self.weight_name

    def is_available(self) -> bool:
        file = self.weights_file()
        if file is None:
            return False
        # Shipped with the code: offered once it is really there. Configured by an operator:
        # offered (a missing file fails loudly on the worker, as for a model's weights).
        return file.is_file() if self.weights_path_setting else True


@dataclass(frozen=True)
class ModelSpec:
    name: str
    label: str
    # The diffusers class named in the weights folder's model_index.json.
    pipeline: str
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
    # Prompt embeddings are padded to exactly this many tokens (see models.toml).
    max_sequence_length: int = 512
    # On CUDA; the CPU always runs float32 (its bf16 matmuls are slow and imprecise).
    dtype: str = "bfloat16"
    vae_dtype: str = "float32"
    speeds: tuple[str, ...] = ("standard",)
    # The same weights behind other tasks' pipeline classes ("": not offered): remixes
    # (video to video) and a reference image for the first frame (image to video).
    remix_pipeline: str = ""
    image_pipeline: str = ""
    # Price per unit of work relative to the reference model (billing/pricing.py).
    credit_factor: float = 1.0
    # Where the weights are: built by prepare_models, a path, or an environment variable.
    builtin: bool = False
    weights_path_setting: str = ""
    weights_env: str = ""
    description: str = field(default="", compare=False)
    # The distillation adapter behind the `turbo` speed ([models.turbo] in the registry).
    turbo: AdapterSpec | None = None

    def weights_path(self) -> Path | None:
        if self.builtin:
            return settings.FRAMECAST_MODELS_DIR / self.name
        return _local_path(self.weights_path_setting, self.weights_env)

    def is_available(self) -> bool:
        path = self.weights_path()
        if path is None:
            return False
        if self.weights_path_setting:  # shipped with the code: offered once it is really there
            return (path / "model_index.json").is_file()
        return True  # built by prepare_models, or configured (a missing folder fails loudly)

    def offered_speeds(self) -> tuple[str, ...]:
        """The declared speeds this machine can run: turbo needs its adapter's weights."""
        return tuple(
            speed for speed in self.speeds if speed != "turbo" or (self.turbo is not None and self.turbo.is_available())
        )

    def supports_speed(self, speed: str) -> bool:
        return speed in self.offered_speeds()

    def steps_and_guidance(self, speed: str) -> tuple[int, float] | None:
        """The steps and guidance a speed fixes (turbo: its adapter's), or None when the
        request chooses them."""
        if speed == "turbo" and self.turbo is not None:
            return self.turbo.steps, self.turbo.guidance
        return None

    def speed_price_factor(self, speed: str) -> float:
        """A step's price at `speed` relative to a standard step (billing/pricing.py)."""
        if speed == "turbo":
            return self.turbo.price_factor
        return SPEED_FACTORS[speed]


_KEYS = {"weights_path": "weights_path_setting"}


def _adapter(model: str, row: dict) -> AdapterSpec:
    row = {_KEYS.get(key, key): value for key, value in row.items()}
    where = f"model {model!r}, [models.turbo]"
    if bool(row.get("weights_path_setting")) == bool(row.get("weights_env")):
        raise ValueError(f"{where}: give exactly one of weights_path, weights_env")
    missing = {"steps", "guidance", "price_factor"} - set(row)
    if missing:
        raise ValueError(f"{where}: missing {', '.join(sorted(missing))}")
    try:
        adapter = AdapterSpec(**row)
    except TypeError as error:
        raise ValueError(f"{where}: {error}") from None
    if not (isinstance(adapter.steps, int) and adapter.steps >= 1):
        raise ValueError(f"{where}: steps must be a whole number of at least 1")
    if not 0 < adapter.price_factor <= 1:
        raise ValueError(f"{where}: price_factor must be more than 0 and at most 1")
    if not MIN_GUIDANCE <= adapter.guidance <= MAX_GUIDANCE:
        raise ValueError(f"{where}: guidance must be between {MIN_GUIDANCE} and {MAX_GUIDANCE}")
    if adapter.flow_shift is not None and not adapter.flow_shift > 0:
        raise ValueError(f"{where}: flow_shift must be positive")
    return adapter


def _spec(row: dict) -> ModelSpec:
    row = {_KEYS.get(key, key): value for key, value in row.items()}
    row["speeds"] = tuple(row.get("speeds", ("standard",)))
    unknown = set(row.get("speeds")) - set(SPEEDS)
    if unknown:
        raise ValueError(f"model {row['name']!r}: unknown speeds {sorted(unknown)} (known: {list(SPEEDS)})")
    sources = [bool(row.get("builtin")), bool(row.get("weights_path_setting")), bool(row.get("weights_env"))]
    if sum(sources) != 1:
        raise ValueError(f"model {row['name']!r}: give exactly one of builtin, weights_path, weights_env")
    if "turbo" in row:
        row["turbo"] = _adapter(row["name"], row["turbo"])
    if ("turbo" in row["speeds"]) != (row.get("turbo") is not None):
        raise ValueError(f"model {row['name']!r}: the turbo speed and a [models.turbo] adapter go together")
    spec = ModelSpec(**row)
    if spec.turbo is not None and spec.turbo.steps > spec.max_steps:
        raise ValueError(f"model {spec.name!r}: turbo steps exceed max_steps")
    return spec


@cache
def _load(path: str) -> dict[str, ModelSpec]:
    with Path(path).open("rb") as file:
        rows = tomllib.load(file)["models"]
    specs = [_spec(row) for row in rows]
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: a model is declared twice")
    return {spec.name: spec for spec in specs}


def all_models() -> dict[str, ModelSpec]:
    """Every declared model, offered or not."""
    return _load(str(settings.FRAMECAST_MODELS_FILE))


def builtin_models() -> list[ModelSpec]:
    return [spec for spec in all_models().values() if spec.builtin]


def __getattr__(name: str):
    # catalog.TINY: the built-in development model (tests and prepare_models use it).
    if name == "TINY":
        return all_models()["framecast-tiny"]
    raise AttributeError(name)


MIN_FPS, MAX_FPS = 1, 30
MIN_GUIDANCE, MAX_GUIDANCE = 0.0, 20.0
MAX_SEED = 2**32 - 1
MAX_PROMPT_CHARS = 2000


def available_models() -> list[ModelSpec]:
    return [spec for spec in all_models().values() if spec.is_available()]


def get_model(name: str) -> ModelSpec | None:
    spec = all_models().get(name)
    return spec if spec is not None and spec.is_available() else None


def default_model() -> ModelSpec:
    spec = get_model(settings.FRAMECAST_DEFAULT_MODEL)
    if spec is None:
        raise LookupError(f"FRAMECAST_DEFAULT_MODEL={settings.FRAMECAST_DEFAULT_MODEL!r} is not an available model.")
    return spec


def frames_for_duration(spec: ModelSpec, seconds: float, fps: int) -> int:
    """The frame count the model takes nearest to `seconds` of video at `fps`."""
    step = spec.frame_step
    return max(1, step * round(seconds * fps / step) + 1)


def shape_errors(
    spec: ModelSpec, *, width: int, height: int, num_frames: int, steps: int, speed: str = "standard"
) -> dict[str, str]:
    """What is wrong with a request's shape for this model, by field name."""
    errors: dict[str, str] = {}
    for field_name, value in (("width", width), ("height", height)):
        if not spec.min_side <= value <= spec.max_side:
            errors[field_name] = (
                f"{field_name.capitalize()} must be between {spec.min_side} and {spec.max_side} pixels "
                f"for {spec.name} (got {value})."
            )
        elif value % spec.size_multiple:
            errors[field_name] = f"{field_name.capitalize()} must be a multiple of {spec.size_multiple} pixels (got {value})."
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
    if not spec.supports_speed(speed):
        errors["speed"] = f"{spec.name} offers only the speeds {', '.join(spec.offered_speeds())} (got {speed})."
    return errors


def remix_denoising_steps(steps: int, strength: float) -> int:
    """The denoising steps a remix runs, computed as diffusers' WanVideoToVideoPipeline
    does (`get_timesteps`: int(steps × strength), rounded down, float error included).
    Zero steps make the pipeline fail with a reshape error after taking a worker."""
    return min(int(steps * strength), steps)


def least_remix_strength(steps: int) -> float:
    """The smallest strength, in hundredths, that gives a remix of `steps` one step."""
    hundredths = -(-100 // steps)
    while remix_denoising_steps(steps, hundredths / 100) < 1:
        hundredths += 1
    return hundredths / 100
