"""Each worker process reports itself every FRAMECAST_HEARTBEAT_SECONDS: host, pool,
device, memory in use, the job it denoises and the ones its finisher stores (one per finisher
thread, FRAMECAST_FINISHER_THREADS), jobs done, and
its phase: `warming` (loading its models, running its warm-up generation: it takes no job
yet), `ready`, or `stopping` (told to shut down) (WorkerHeartbeat rows). The reaper treats a worker silent for
FRAMECAST_HEARTBEAT_STALE_SECONDS as lost, and a job that a live worker's beats no longer
name as abandoned. A worker in trouble (it cannot reach the database for its work) stops
beating until it can work again: it must not look healthy meanwhile."""

import logging
import resource
import sys
import threading

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

logger = logging.getLogger(__name__)


class _State:
    hostname = ""
    pool = ""
    started_at = None
    current_job_id = None
    finishing_job_ids: list = []  # in the order they were handed to the finisher
    finishing_lock = threading.Lock()
    trouble = None  # why this worker cannot work right now; None when it can
    jobs_done = 0
    phase = "ready"
    stop = threading.Event()
    beat_now = threading.Event()  # a change worth reporting at once (not from a signal handler)
    thread: threading.Thread | None = None


state = _State()


def _pool_from_queues(queues: list[str]) -> str:
    from generation.pools import queue_name

    prefix = queue_name("")
    names = [queue.removeprefix(prefix) for queue in queues if queue.startswith(prefix)]
    return ",".join(names) or "-"


def _device_and_memory() -> tuple[str, float]:
    torch = sys.modules.get("torch")  # only report CUDA if the worker already loaded torch
    cuda = getattr(torch, "cuda", None)  # None while another thread is still importing torch
    if cuda is not None and cuda.is_available():
        return torch.cuda.get_device_name(0), torch.cuda.memory_allocated(0) / 2**20
    return "cpu", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_phase() -> str:
    from . import shutdown

    return "stopping" if shutdown.requested() else state.phase


def beat() -> None:
    from .models import WorkerHeartbeat

    device, memory = _device_and_memory()
    finishing = finishing_job_ids()
    embeddings = sys.modules.get("gpu_workers.embeddings")  # loaded with the first model
    cache = embeddings.counts() if embeddings is not None else {"hits": 0, "misses": 0}
    WorkerHeartbeat.objects.update_or_create(
        hostname=state.hostname,
        defaults={
            "pool": state.pool,
            "device": device,
            "memory_used_mb": round(memory, 1),
            "current_job_id": state.current_job_id,
            "finishing_job_id": finishing[0] if finishing else None,  # the oldest, for displays
            "finishing_job_ids": [str(job_id) for job_id in finishing],
            "jobs_done": state.jobs_done,
            # The prompt-embedding cache's counters (for /metrics), since the process started.
            "embedding_cache_hits": cache["hits"],
            "embedding_cache_misses": cache["misses"],
            "phase": current_phase(),
            "started_at": state.started_at,
            "last_seen_at": timezone.now(),
        },
    )


def _loop() -> None:
    while not state.stop.is_set():
        try:
            close_old_connections()
            if state.trouble:
                logger.warning("Heartbeat withheld: %s", state.trouble)
            else:
                beat()
        except Exception:  # noqa: BLE001 - a missed beat must not kill the worker
            logger.warning("Heartbeat failed", exc_info=True)
        finally:
            close_old_connections()  # no connection idles between beats (unless CONN_MAX_AGE says so)
        state.beat_now.wait(settings.FRAMECAST_HEARTBEAT_SECONDS)
        state.beat_now.clear()


def start(*, hostname: str, queues: list[str], phase: str = "ready") -> None:
    """Beat from now on, as `phase` (a worker that warms up starts as "warming" and calls
    ready() once its warm-up generation is done)."""
    state.hostname, state.pool = hostname, _pool_from_queues(queues)
    state.started_at = timezone.now()
    state.phase = phase
    state.stop.clear()
    state.thread = threading.Thread(target=_loop, name="framecast-heartbeat", daemon=True)
    state.thread.start()


def ready() -> None:
    """The warm-up is done: report `ready` now rather than at the next beat."""
    state.phase = "ready"
    state.beat_now.set()


def stop() -> None:
    state.stop.set()
    state.beat_now.set()
    if state.thread is not None and state.thread is not threading.current_thread():
        state.thread.join(timeout=5)  # a beat under way ends before the worker does


def job_started(job_id) -> None:
    state.current_job_id = job_id


def job_finished() -> None:
    state.current_job_id = None
    state.jobs_done += 1


def finishing_started(job_id) -> None:
    if job_id is None:
        return
    with state.finishing_lock:
        state.finishing_job_ids = [*state.finishing_job_ids, job_id]


def finishing_ended(job_id) -> None:
    with state.finishing_lock:
        state.finishing_job_ids = [j for j in state.finishing_job_ids if j != job_id]


def finishing_job_ids() -> list:
    """The jobs this worker's finisher holds now (each is named until it is stored or ended)."""
    with state.finishing_lock:
        return list(state.finishing_job_ids)


def trouble(reason: str | None) -> None:
    """Say that this worker cannot work (a reason) or can again (None)."""
    if reason != state.trouble:
        logger.log(logging.WARNING if reason else logging.INFO, "Worker %s", f"in trouble: {reason}" if reason else "can work again")
    state.trouble = reason
