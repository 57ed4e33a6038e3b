"""Serve Framecast over ASGI (HTTP and websockets) with uvicorn.

With no broker configured (the embedded mode of `make run`), a GPU worker runs in a thread
of this process, consuming the in-memory broker. With a real broker, workers are separate
processes (`celery -A config worker -Q gpu.<pool>`).
"""

import logging
import threading

import uvicorn
from django.conf import settings
from django.core.management.base import BaseCommand

EMBEDDED_HOSTNAME = "embedded@localhost"


class Command(BaseCommand):
    help = "Run the web server; in the embedded mode also a worker thread."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--embedded-worker",
            choices=["auto", "yes", "no"],
            default="auto",
            help="Run a worker thread in this process (auto: only with the in-memory broker).",
        )

    def handle(self, *args, host, port, embedded_worker, **options):
        embedded = settings.CELERY_BROKER_URL.startswith("memory://")
        if embedded_worker == "yes" or (embedded_worker == "auto" and embedded):
            if not embedded:
                self.stderr.write("Note: an embedded worker beside a real broker competes with the real workers.")
            self._start_embedded_worker(recover=embedded)
        self.stdout.write(self.style.SUCCESS(f"Framecast is running at http://{host}:{port}/"), ending="\n")
        self.stdout.flush()
        # uvicorn logs through Django's LOGGING (JSON with LOG_FORMAT=json); each request is
        # logged once, with its request id, by config.metrics rather than by an access log.
        uvicorn.run(
            "config.asgi:application", host=host, port=port, ws="websockets-sansio", lifespan="off",
            log_level="info", log_config=None, access_log=False,
        )

    def _start_embedded_worker(self, *, recover: bool) -> None:
        from generation.services import jobs_recover_after_restart

        embedded_worker_start()
        threading.Thread(target=self._embedded_beat, name="embedded-beat", daemon=True).start()
        if recover:
            # The in-memory broker lost its messages when the last server stopped.
            requeued, failed = jobs_recover_after_restart()
            if requeued or failed:
                self.stdout.write(f"Requeued {requeued} job(s); failed {failed} interrupted job(s).")

    @staticmethod
    def _embedded_beat(every: float = 15.0) -> None:
        """What `celery beat` schedules in production, for the single-process mode: webhook
        retries. (Lost workers cannot happen here: the worker dies with the process.)"""
        import time

        from django.db import close_old_connections

        from generation.webhooks import webhooks_retry_due

        while True:
            time.sleep(every)
            try:
                close_old_connections()
                webhooks_retry_due()
            except Exception:  # noqa: BLE001 - keep beating
                logging.getLogger(__name__).warning("Embedded beat failed", exc_info=True)


def embedded_worker_start():
    """A worker in a thread of this process, consuming every pool whose models this machine
    has, heartbeating like any other worker. Returns its WorkController (`.stop()` ends it)."""
    from celery.app import trace
    from celery.worker import WorkController

    from celery import current_app

    from generation import catalog, pools
    from generation.webhooks import webhooks_queue
    from gpu_workers import heartbeat

    app = current_app._get_current_object()  # config's app, made current when Django starts

    # Every pool whose models this machine has: on a laptop, the CPU pool's tiny model.
    local_models = {spec.name for spec in catalog.available_models()}
    queues = [pool.queue for pool in pools.all_pools() if local_models & set(pool.models)]
    queues += [webhooks_queue(), settings.CELERY_TASK_DEFAULT_QUEUE]  # customer webhooks, periodic work
    # What `celery worker` does first: among others, tasks then see this worker's name
    # (jobs record it as their worker, and the reaper matches it to the heartbeat).
    trace.setup_worker_optimizations(app, EMBEDDED_HOSTNAME)
    worker = WorkController(
        app=app,
        hostname=EMBEDDED_HOSTNAME,
        pool_cls="solo",
        concurrency=1,
        queues=queues,
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
        loglevel="INFO",
    )
    # `celery worker` sends worker_ready, on which gpu_workers.tasks starts the heartbeat and
    # warms up; a bare WorkController never sends it, and the operations page would show no
    # worker. (Stopping the worker sends worker_shutdown, which stops the heartbeat.)
    heartbeat.start(hostname=EMBEDDED_HOSTNAME, queues=queues, phase="warming")

    def warm_then_work() -> None:
        # In the background while the server starts: the torch import and the model load
        # happen before the first video is asked for, not during it. Jobs submitted
        # meanwhile wait in the in-memory queue ("starting a GPU" in the studio).
        from gpu_workers.warmup import warm_up

        try:
            warm_up(heartbeat.state.pool.split(","))
        finally:
            heartbeat.ready()
        if not heartbeat.state.stop.is_set():  # not stopped while it warmed up
            worker.start()

    threading.Thread(target=warm_then_work, name="embedded-gpu-worker", daemon=True).start()
    return worker
