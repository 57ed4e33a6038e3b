from django.apps import AppConfig


class GenerationConfig(AppConfig):
    name = "generation"
    verbose_name = "Video generation"

    def ready(self):
        from . import content_policy, signals  # noqa: F401 - register the system check and receivers
