"""One worker on several GPUs: a pool with `gpus_per_worker = N` is served by N processes
started together by torchrun, which run every denoising call together (diffusers' context
parallelism, `[pools.context_parallel]`, splits each attention's sequence over them).

    torchrun --nproc-per-node N -m gpu_workers.multigpu -A config worker -Q gpu.<pool> \
        --pool solo --concurrency 1 --hostname <pool>@%h

Rank 0 is the pool's one Celery consumer and does everything a worker does: it claims the
job, reports progress, checks for a cancel, encodes and stores. The other ranks only
follow its denoising calls. The control messages go through torchrun's TCP store, never
through the GPUs' collectives:

- `call/<n>`: the n-th call (model, pipeline class, the arguments of generate_frames),
  pickled; followers wait for it as long as the pool is idle.
- `vote/<n>/<step>`: after each step, whether to stop (rank 0's cancel check), so that
  every rank leaves the loop at the same step.
- `done/<n>/<rank>`: each follower's outcome (a digest of its frames, or its error); rank
  0 checks that every rank made the same video.
- `call/<n>` = None: rank 0's Celery worker has stopped; followers exit.

A rank that fails alone in the middle of a call (out of memory) leaves the others waiting
in their collectives until FRAMECAST_RANKS_TIMEOUT_SECONDS; then they raise, torchrun stops
the group, and the reaper requeues the job as for any lost worker.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import sys
import time
from datetime import timedelta

logger = logging.getLogger(__name__)

IDLE_POLL_SECONDS = 0.05


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def active() -> bool:
    """Whether this process is rank 0 of a multi-GPU worker (torchrun, more than one rank)."""
    return _state.store is not None


class _State:
    store = None
    rank = 0
    calls = 0
    pool = None  # the pool this worker serves (set at worker start, gpu_workers.engines)
    cp_enabled: set[int] = set()


_state = _State()


def _timeout() -> timedelta:
    return timedelta(seconds=float(os.environ.get("FRAMECAST_RANKS_TIMEOUT_SECONDS", "1800")))


def _init() -> int:
    import torch
    import torch.distributed as dist

    rank = int(os.environ["RANK"])
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", rank)))  # "cuda" is this rank's GPU
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo", timeout=_timeout())
    _state.store = dist.distributed_c10d._get_default_store()
    _state.rank = rank
    return rank


# --- rank 0 -------------------------------------------------------------------------------


def generate_frames(spec, pipe, **kwargs):
    """gpu_workers.pipeline.generate_frames, run by every rank of this worker together (as
    it is, in a worker of one process)."""
    from . import pipeline

    if not active():
        return pipeline.generate_frames(pipe, **kwargs)
    store, n = _state.store, _state.calls
    _state.calls += 1
    should_stop = kwargs.pop("should_stop", None)
    shared = {key: value for key, value in kwargs.items() if key not in ("on_step", "on_latents")}
    config = dict(_state.pool.context_parallel) if _state.pool is not None and _state.pool.context_parallel else None
    store.set(f"call/{n}", pickle.dumps(
        {"model": spec.name, "pipeline": type(pipe).__name__, "context_parallel": config, "kwargs": shared}))
    _enable_context_parallel(spec, pipe, config)
    step = 0

    def vote() -> bool:
        nonlocal step
        step += 1
        stop = bool(should_stop and should_stop())
        store.set(f"vote/{n}/{step}", b"1" if stop else b"0")
        return stop

    error = frames = None
    try:
        frames = pipeline.generate_frames(pipe, **kwargs, should_stop=vote)
    except Exception as failure:  # noqa: BLE001 - re-raised below, once the followers are heard
        error = failure
    outcomes = {rank: pickle.loads(store.get(f"done/{n}/{rank}")) for rank in range(1, world_size())}
    for key in [f"call/{n}", *(f"vote/{n}/{i}" for i in range(1, step + 1)), *(f"done/{n}/{r}" for r in outcomes)]:
        store.delete_key(key)
    if error is not None:
        raise error
    mine = _digest(frames)
    if any(outcome != mine for outcome in outcomes.values()):
        raise RuntimeError(f"the ranks of this worker made different videos: rank 0 {mine}, the others {outcomes}")
    logger.info("%d ranks made the same %d frames (%s)", world_size(), len(frames), mine)
    return frames


def _digest(frames) -> str:
    return hashlib.sha256(frames.tobytes()).hexdigest()[:16]


def _enable_context_parallel(spec, pipe, config: dict | None) -> None:
    """Splits the transformer's attention over the ranks (once per loaded transformer),
    where the pool declares context parallelism."""
    transformer = getattr(pipe, "transformer", None)
    if config is None or transformer is None or id(transformer) in _state.cp_enabled:
        return
    from diffusers import ContextParallelConfig

    transformer.enable_parallelism(config=ContextParallelConfig(**config))
    _state.cp_enabled.add(id(transformer))
    logger.info("%s: context parallelism %s over %d ranks", spec.name, config, world_size())


def _stop_followers() -> None:
    if _state.store is not None:
        _state.store.set(f"call/{_state.calls}", pickle.dumps(None))


# --- the other ranks -----------------------------------------------------------------------


def follow() -> None:
    """Runs rank 0's calls until it stops."""
    from generation import catalog

    from . import pipeline

    store, rank, n = _state.store, _state.rank, 0
    while True:
        # Polled, not waited on: an idle pool may wait for hours, beyond any store timeout.
        while not store.check([f"call/{n}"]):
            time.sleep(IDLE_POLL_SECONDS)
        call = pickle.loads(store.get(f"call/{n}"))
        if call is None:
            logger.info("Rank %d: rank 0 stopped; exiting", rank)
            return
        spec = catalog.get_model(call["model"])
        step = 0

        def vote(n: int = n) -> bool:
            nonlocal step
            step += 1
            return store.get(f"vote/{n}/{step}") == b"1"

        try:
            pipe = pipeline.load_model(spec)
            if type(pipe).__name__ != call["pipeline"]:
                pipe = pipeline.variant(pipe, call["pipeline"])
            _enable_context_parallel(spec, pipe, call["context_parallel"])
            outcome = _digest(pipeline.generate_frames(pipe, **call["kwargs"], should_stop=vote))
        except pipeline.GenerationCancelled:
            outcome = "cancelled"
        except Exception as error:  # noqa: BLE001 - reported to rank 0, which fails the job
            logger.exception("Rank %d: call %d failed", rank, n)
            outcome = f"error: {error!r}"
        store.set(f"done/{n}/{rank}", pickle.dumps(outcome))
        logger.info("Rank %d: call %d done (%s)", rank, n, outcome)
        n += 1


def main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    logging.basicConfig(level=logging.INFO, format=f"[rank {os.environ.get('RANK', '?')}] %(levelname)s %(name)s: %(message)s")
    rank = _init()
    if rank != 0:
        follow()
        return 0
    from celery.bin.celery import main as celery_main

    sys.argv = ["celery", *argv]
    try:
        celery_main()
    except SystemExit as done:
        if isinstance(done.code, str):  # a refusal to start: said as the interpreter would
            print(done.code, file=sys.stderr, flush=True)
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    finally:
        _stop_followers()
    return 0


if __name__ == "__main__":
    # Through the package's module, not this __main__ copy: the state above must be the one
    # the runner and the start-up check import.
    from gpu_workers.multigpu import main as package_main

    sys.exit(package_main(sys.argv[1:]))


def check_worker_start(consumed_pools) -> list[str]:
    """At worker start: a pool of several GPUs per worker is served only by ranks started
    with torchrun through this module, as many as it declares, and consumed alone."""
    problems = []
    multi = [pool for pool in consumed_pools if pool.gpus_per_worker > 1]
    launch = "torchrun --nproc-per-node {n} -m gpu_workers.multigpu -A config worker -Q gpu.{name} --pool solo"
    for pool in multi:
        if world_size() != pool.gpus_per_worker or not active():
            problems.append(
                f"Pool {pool.name!r} runs each job on {pool.gpus_per_worker} GPUs: start its worker with "
                f"`{launch.format(n=pool.gpus_per_worker, name=pool.name)}` (this worker has {world_size()} rank(s))."
            )
    if world_size() > 1 and active() and (len(consumed_pools) != 1 or not multi):
        problems.append(f"A worker of {world_size()} ranks consumes exactly one pool whose gpus_per_worker is "
                        f"{world_size()} (it consumes {', '.join(p.name for p in consumed_pools) or 'none'}).")
    if not problems and multi and multi[0].context_parallel:
        import torch

        if not torch.cuda.is_available():
            # diffusers 0.42 picks each rank's device as rank % torch.accelerator.device_count(),
            # which is 0 on a CPU-only machine (ZeroDivisionError), so gloo cannot run it.
            problems.append(f"Pool {multi[0].name!r} splits attention over GPUs (context_parallel): "
                            "diffusers runs context parallelism on CUDA GPUs only, and this worker has none.")
    if not problems and multi:
        _state.pool = multi[0]
    return problems
