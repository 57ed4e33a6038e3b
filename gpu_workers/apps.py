from django.apps import AppConfig


class GpuWorkersConfig(AppConfig):
    name = "gpu_workers"
    verbose_name = "GPU workers"

    def ready(self):
        from celery import signals

        from .engines import refuse_to_start_misconfigured

        # SystemExit passes through celery's signal dispatch (it catches Exception only).
        signals.worker_init.connect(refuse_to_start_misconfigured, weak=False)
