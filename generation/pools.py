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


def pool_for_model(model_name: str) -> Pool:
    for pool in all_pools():
        if model_name in pool.models:
            return pool
    raise NoPool(f"No worker pool serves the model {model_name!r}.")
