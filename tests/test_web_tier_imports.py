"""The web tier never loads torch or diffusers: they live only on GPU worker hosts."""

import subprocess
import sys
import textwrap

from .conftest import REPO


def test_web_app_loads_without_torch_or_diffusers():
    script = textwrap.dedent(
        """
        import os, sys
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        import django
        django.setup()
        from django.urls import get_resolver
        resolver = get_resolver()
        resolver.url_patterns  # imports every view module
        for pattern in resolver.url_patterns:
            getattr(pattern, "url_patterns", None)
        import config.asgi  # websocket routing and consumers
        from config.celery_app import app
        app.loader.import_default_modules()  # Celery autodiscovery, as a web process does
        assert "gpu_workers.run_next" in app.tasks
        heavy = sorted(name for name in sys.modules if name.split(".")[0] in {"torch", "diffusers", "transformers"})
        print("HEAVY:", heavy)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "HEAVY: []" in result.stdout, result.stdout
