from django.apps import AppConfig


class GenerationConfig(AppConfig):
    name = "generation"
    verbose_name = "Video generation"

    def ready(self):
        from django.urls import register_converter

        from . import content_policy, pools, signals  # noqa: F401 - register the system checks and receivers
        from .converters import ShareTokenConverter

        # Here, not in urls.py: generation's and safety's URLconfs both route share links.
        register_converter(ShareTokenConverter, "share_token")
