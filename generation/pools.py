"""Worker pools as data (generation/pools.toml, or FRAMECAST_POOLS_FILE), and routing.

Plain data, no torch: the web tier routes a job to a pool's queue with it; workers and the
cost model read the pool's price from it."""

import os
import tomllib
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

# What runs a pool's jobs: "diffusers" in the worker's own process (the default), or
# "openai_videos", a server of the OpenAI Videos API (SGLang-Diffusion, another Framecast)
# that the worker submits each job to (gpu_workers/engines/).
ENGINES = ("diffusers", "openai_videos")


class PoolsFileError(ImproperlyConfigured):
    """The pools file declares something no worker could run; the message names the pool."""


@dataclass(frozen=True)
class Engine:
    kind: str = "diffusers"
    # openai_videos only: the API's root (the part before /videos), the environment variable
    # holding its API key (read by the worker only), Framecast's model names → the engine's.
    base_url: str = ""
    api_key_env: str = ""
    model_map: tuple[tuple[str, str], ...] = ()
    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 60.0  # per request
    job_timeout_seconds: float = 1800.0  # submission to downloaded video
    poll_seconds: float = 2.0
    max_video_bytes: int = 1 << 30

    @property
    def in_process(self) -> bool:
        return self.kind == "diffusers"

    def engine_model(self, model_name: str) -> str:
        return dict(self.model_map)[model_name]

    def api_key(self) -> str:
        return os.environ.get(self.api_key_env, "")


@dataclass(frozen=True)
class Pool:
    name: str
    gpu: str
    price_per_gpu_hour: float
    models: tuple[str, ...]
    max_concurrent_per_gpu: int = 1
    # The largest job this pool's GPUs take (memory): 0 = whatever the model allows.
    max_pixels_per_frame: int = 0
    max_frames: int = 0
    engine: Engine = field(default_factory=Engine)
    # GPUs one worker runs each job on (torchrun ranks, gpu_workers/multigpu.py), and how the
    # transformer's attention is split over them: diffusers' ContextParallelConfig fields
    # (ring_degree, ulysses_degree), their product the GPU count; empty: not split.
    gpus_per_worker: int = 1
    context_parallel: tuple[tuple[str, int], ...] = ()
    # Autoscaling bounds (ops/scaling.py): the warm floor (0: the pool may scale to zero) and
    # the ceiling of workers; the queue's estimated work should drain within drain_seconds.
    min_workers: int = 0
    max_workers: int = 1
    drain_seconds: float = 300
    # GPU-seconds per credit of work before the pool has finished any job to learn from
    # (the reference job, 100 credits, takes about 100 s on an H100).
    seconds_per_credit: float = 1.0

    def __post_init__(self):
        if not 0 <= self.min_workers <= self.max_workers:
            raise ValueError(f"Pool {self.name!r}: need 0 <= min_workers <= max_workers.")
        if self.drain_seconds <= 0 or self.seconds_per_credit <= 0:
            raise ValueError(f"Pool {self.name!r}: drain_seconds and seconds_per_credit must be positive.")

    def takes(self, model_name: str, *, width: int, height: int, num_frames: int) -> bool:
        return (
            model_name in self.models
            and (not self.max_pixels_per_frame or width * height <= self.max_pixels_per_frame)
            and (not self.max_frames or num_frames <= self.max_frames)
        )

    @property
    def queue(self) -> str:
        return queue_name(self.name)


def queue_name(pool_name: str) -> str:
    # The prefix lets test runs (and staging beside production) share one broker.
    return f"{settings.FRAMECAST_QUEUE_PREFIX}gpu.{pool_name}"


@cache
def _load(path: str) -> tuple[Pool, ...]:
    with Path(path).open("rb") as file:
        rows = tomllib.load(file)["pools"]
    return tuple(
        Pool(**{**row, "models": tuple(row["models"]), "engine": _engine(row.get("name", "?"), row),
                "context_parallel": _context_parallel(row.get("name", "?"), row)})
        for row in rows
    )


CONTEXT_PARALLEL_FIELDS = ("ring_degree", "ulysses_degree")


def _context_parallel(pool: str, row: dict) -> tuple[tuple[str, int], ...]:
    where = f"Pool {pool!r} in {settings.FRAMECAST_POOLS_FILE}"
    gpus = row.get("gpus_per_worker", 1)
    if not isinstance(gpus, int) or isinstance(gpus, bool) or gpus < 1:
        raise PoolsFileError(f"{where}: gpus_per_worker must be a whole number of at least 1 (got {gpus!r}).")
    engine = row.get("engine", "diffusers")
    if gpus > 1 and (engine if isinstance(engine, str) else engine.get("kind", "diffusers")) != "diffusers":
        raise PoolsFileError(f"{where}: gpus_per_worker is for in-process (diffusers) pools; an engine spreads its "
                             "own GPUs (e.g. sglang serve --num-gpus).")
    raw = dict(row.get("context_parallel", {}))
    if unknown := sorted(set(raw) - set(CONTEXT_PARALLEL_FIELDS)):
        raise PoolsFileError(f"{where}: unknown context_parallel field(s) {', '.join(unknown)} "
                             f"(known: {', '.join(CONTEXT_PARALLEL_FIELDS)}).")
    if not raw:
        return ()
    degrees = [raw.get(name, 1) for name in CONTEXT_PARALLEL_FIELDS]
    if any(not isinstance(d, int) or isinstance(d, bool) or d < 1 for d in degrees) or degrees[0] * degrees[1] != gpus:
        raise PoolsFileError(f"{where}: context_parallel ring_degree × ulysses_degree must equal gpus_per_worker "
                             f"({gpus}); got {raw}.")
    return tuple(sorted(raw.items()))


def _engine(pool: str, row: dict) -> Engine:
    """The pool's `engine` (a name, or a table with `kind` and its options), checked: a
    mistake here would otherwise surface as every job of the pool failing."""
    raw = row.get("engine", "diffusers")
    raw = {"kind": raw} if isinstance(raw, str) else dict(raw)
    where = f"Pool {pool!r} in {settings.FRAMECAST_POOLS_FILE}"
    kind = raw.get("kind", "diffusers")
    if kind not in ENGINES:
        raise PoolsFileError(f"{where}: unknown engine {kind!r} (known: {', '.join(ENGINES)}).")
    known = {f.name for f in fields(Engine)}
    if unknown := sorted(set(raw) - known):
        raise PoolsFileError(f"{where}: unknown engine option(s) {', '.join(unknown)}.")
    if kind == "diffusers":
        return Engine()
    url = urlsplit(str(raw.get("base_url", "")))
    if url.scheme not in ("http", "https") or not url.netloc:
        raise PoolsFileError(f"{where}: engine.base_url must be an http:// or https:// URL (got {raw.get('base_url')!r}).")
    if not raw.get("api_key_env"):
        raise PoolsFileError(f"{where}: engine.api_key_env must name the environment variable holding the engine's API key.")
    model_map = dict(raw.get("model_map", {}))
    if missing := [model for model in row.get("models", ()) if not model_map.get(model)]:
        raise PoolsFileError(f"{where}: engine.model_map does not name the engine's model for {', '.join(missing)}.")
    for option in ("connect_timeout_seconds", "read_timeout_seconds", "job_timeout_seconds", "poll_seconds",
                   "max_video_bytes"):
        if option in raw and not (isinstance(raw[option], int | float) and raw[option] > 0):
            raise PoolsFileError(f"{where}: engine.{option} must be a number above 0 (got {raw[option]!r}).")
    return Engine(**{**raw, "base_url": str(raw["base_url"]).rstrip("/"), "model_map": tuple(sorted(model_map.items()))})


def engine_key_problems(pool_names) -> list[str]:
    """For a worker about to consume these pools: engine pools whose API key variable is
    unset or empty (the web tier never needs the key, so only workers check it)."""
    problems = []
    for pool in all_pools():
        if pool.name in pool_names and not pool.engine.in_process and not pool.engine.api_key():
            problems.append(
                f"Pool {pool.name!r} runs on the engine at {pool.engine.base_url}, but its API key variable "
                f"{pool.engine.api_key_env} is not set in this worker's environment."
            )
    return problems


@checks.register()
def check_pools_file(app_configs=None, **kwargs) -> list:
    """At start (every manage.py command, the server, `manage.py check`): the pools file parses."""
    try:
        all_pools()
    except (PoolsFileError, OSError, KeyError, TypeError, tomllib.TOMLDecodeError) as error:
        return [checks.Error(f"The worker pools file cannot be used: {error}", id="generation.E002")]
    return []


def all_pools() -> tuple[Pool, ...]:
    return _load(str(settings.FRAMECAST_POOLS_FILE))


def get_pool(name: str) -> Pool | None:
    return next((pool for pool in all_pools() if pool.name == name), None)


class NoPool(LookupError):
    pass


def engine_refusal(pool: Pool, *, speed: str, remix: bool, loras: bool) -> tuple[str, str] | None:
    """(field, message) when `pool` runs its jobs on an engine that cannot do what the job
    asks: the engine gets the prompt, size, steps and seed, nothing applied in-process (the
    fast mode's step cache, the turbo adapter, team LoRAs, a remix's source frames)."""
    if pool.engine.in_process:
        return None
    where = f"the {pool.name} pool's engine"
    if remix:
        return "model", f"This model runs on {where}, which cannot remix videos."
    if loras:
        return "loras", f"This model runs on {where}, which cannot apply LoRAs."
    if speed != "standard":
        return "speed", f"This model runs on {where}, which offers only the standard speed (got {speed})."
    return None


def pools_for_model(model_name: str) -> list[Pool]:
    return [pool for pool in all_pools() if model_name in pool.models]


def pool_for_job(model_name: str, *, width: int, height: int, num_frames: int) -> Pool:
    """The first pool (in file order: list cheaper GPUs first) that serves the model at this
    size. Raises NoPool naming what is missing."""
    serving = pools_for_model(model_name)
    if not serving:
        raise NoPool(f"No worker pool serves the model {model_name!r}.")
    for pool in serving:
        if pool.takes(model_name, width=width, height=height, num_frames=num_frames):
            return pool
    raise NoPool(
        f"No worker pool runs {model_name} at {width}×{height} with {num_frames} frames; "
        "choose a smaller size or fewer frames."
    )
