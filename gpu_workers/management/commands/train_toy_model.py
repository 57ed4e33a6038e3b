from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Train the toy text-to-video model (framecast-toy) from scratch on the synthetic world "
        "and save it as a diffusers pipeline folder (fixed seeds; ~50 min on 2 idle CPU cores)."
    )

    def add_arguments(self, parser):
        from gpu_workers.toy.train import TrainConfig

        parser.add_argument(
            "--out",
            type=Path,
            default=Path(settings.BASE_DIR) / "gpu_workers" / "weights" / "framecast-toy",
            help="folder to save the pipeline to (default: the shipped weights folder)",
        )
        parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
        defaults = TrainConfig()
        for name in ("seed", "ae_steps", "tr_steps", "tr_stop_at", "threads"):
            parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))

    def handle(self, *args, **options):
        # Imported only when the command runs: listing commands must not import torch.
        from gpu_workers.toy.train import TrainConfig, train

        names = ("seed", "ae_steps", "tr_steps", "tr_stop_at", "threads")
        config = TrainConfig(**{name: options[name] for name in names})
        summary = train(options["out"], config, device=options["device"])
        self.stdout.write(f"Saved framecast-toy to {options['out']} in {summary['minutes']['total']} min")
