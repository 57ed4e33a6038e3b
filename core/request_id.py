"""A request id for every request: taken from a sane `X-Request-ID` header (a proxy's) or
made here, returned in the `X-Request-ID` response header and in every API error, so a
customer's bug report points at our logs.

The id follows the work the request started: Celery tasks published while it is current
carry it in a message header, and a job submitted by it keeps it (in the cache, keyed by
the job) so the worker that runs the job, whichever wake-up message brought it there,
logs under the same id. Every log line carries `request_id` and `job_id` (core.logs).
"""

import contextlib
import re
import uuid
from contextvars import ContextVar

current_request_id: ContextVar[str] = ContextVar("request_id", default="")
current_job_id: ContextVar[str] = ContextVar("job_id", default="")
_SANE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

CELERY_HEADER = "framecast_request_id"
# How long a job's request id is kept for its worker: longer than any job waits and runs.
JOB_LINK_SECONDS = 7 * 24 * 3600


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        given = request.headers.get("X-Request-ID", "")
        request_id = given if _SANE.match(given) else f"req_{uuid.uuid4().hex}"
        request.request_id = request_id  # for log lines written after this middleware returns
        token = current_request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            current_request_id.reset(token)
        response["X-Request-ID"] = request_id
        return response


def _job_key(job_id) -> str:
    return f"framecast:job-request-id:{job_id}"


def remember_for_job(job_id) -> None:
    """Keep the current request id for the job it created (nothing outside a request)."""
    request_id = current_request_id.get()
    if request_id:
        from django.core.cache import cache

        cache.set(_job_key(job_id), request_id, JOB_LINK_SECONDS)


def bind_job(job_id) -> None:
    """From here on (in this context: a worker's task, or a copy handed to a thread), log
    lines name the job and the request that submitted it."""
    from django.core.cache import cache

    try:
        request_id = cache.get(_job_key(job_id)) or ""
    except Exception:  # noqa: BLE001 - a cache outage must not stop the job; logs lose the id
        request_id = ""
    current_job_id.set(str(job_id))
    current_request_id.set(request_id or current_request_id.get())


@contextlib.contextmanager
def bound(*, request_id: str = "", job_id: str = ""):
    request_token = current_request_id.set(request_id)
    job_token = current_job_id.set(job_id)
    try:
        yield
    finally:
        current_job_id.reset(job_token)
        current_request_id.reset(request_token)


# --- Celery: the id travels in a message header and is current while the task runs ------


def _on_publish(headers=None, **kwargs) -> None:
    request_id = current_request_id.get()
    if request_id and headers is not None and CELERY_HEADER not in headers:
        headers[CELERY_HEADER] = request_id


_task_tokens: dict[str, tuple] = {}


def _on_task_start(task_id=None, task=None, **kwargs) -> None:
    request_id = getattr(task.request, CELERY_HEADER, None) or (task.request.headers or {}).get(CELERY_HEADER) or ""
    _task_tokens[task_id] = (current_request_id.set(request_id), current_job_id.set(""))


def _on_task_end(task_id=None, **kwargs) -> None:
    tokens = _task_tokens.pop(task_id, None)
    if tokens:
        try:
            current_request_id.reset(tokens[0])
            current_job_id.reset(tokens[1])
        except ValueError:  # ended in another context than it started: nothing to restore
            pass


def connect_signals() -> None:
    """Called once by config.celery_app (every process loads it)."""
    from celery import signals
    from django.db.models.signals import post_save

    signals.before_task_publish.connect(_on_publish, weak=False)
    signals.task_prerun.connect(_on_task_start, weak=False)
    signals.task_postrun.connect(_on_task_end, weak=False)
    # "generation.Job" is resolved when the app registry is ready.
    post_save.connect(_on_job_saved, sender="generation.Job", weak=False, dispatch_uid="framecast-job-request-id")


def _on_job_saved(sender, instance, created, **kwargs) -> None:
    if created:
        remember_for_job(instance.pk)
