from django.core.management.base import BaseCommand

from generation import catalog


class Command(BaseCommand):
    help = "Create the default tiny model's weights locally (once); check configured checkpoints exist."

    def handle(self, *args, **options):
        from gpu_workers.tiny_model import ensure_tiny_model

        path = catalog.TINY.weights_path()
        built = ensure_tiny_model(path)
        self.stdout.write(f"{'Built' if built else 'Found'} {catalog.TINY.name} at {path}")
        for spec in catalog.available_models():
            if spec is not catalog.TINY and not (spec.weights_path() / "model_index.json").exists():
                self.stderr.write(f"Warning: {spec.name} is configured but {spec.weights_path()} has no model_index.json")
