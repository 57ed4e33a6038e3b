from django.apps import AppConfig


class GenerationConfig(AppConfig):
    name = "generation"
    verbose_name = "Video generation"

    def ready(self):
        from . import content_policy  # noqa: F401 - registers its system check
