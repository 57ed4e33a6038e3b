"""Worker pools as data (generation/pools.toml, or FRAMECAST_POOLS_FILE), and routing.

Plain data, no torch: the web tier routes a job to a pool's queue with it; workers and the
cost model read the pool's price from it."""

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from django.conf import settings


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
    return tuple(Pool(**{**row, "models": tuple(row["models"])}) for row in rows)


def all_pools() -> tuple[Pool, ...]:
    return _load(str(settings.FRAMECAST_POOLS_FILE))


def get_pool(name: str) -> Pool | None:
    return next((pool for pool in all_pools() if pool.name == name), None)


class NoPool(LookupError):
    pass


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
