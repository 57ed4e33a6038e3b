from django.core.management.base import BaseCommand

from generation import catalog


class Command(BaseCommand):
    help = "Create the built-in models' weights locally (once); check configured checkpoints exist."

    def handle(self, *args, **options):
        from gpu_workers.tiny_model import ensure_tiny_model

        for spec in catalog.builtin_models():
            path = spec.weights_path()
            built = ensure_tiny_model(path)
            self.stdout.write(f"{'Built' if built else 'Found'} {spec.name} at {path}")
        for spec in catalog.available_models():
            if not spec.builtin and not (spec.weights_path() / "model_index.json").exists():
                self.stderr.write(f"Warning: {spec.name} is configured but {spec.weights_path()} has no model_index.json")
