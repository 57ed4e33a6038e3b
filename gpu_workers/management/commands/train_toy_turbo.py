from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Distil framecast-toy (25 steps, guidance 8) into a LoRA that generates in 3 steps without "
        "guidance (its `turbo` speed) and save it in diffusers' LoRA format (fixed seeds; ~6 min on "
        "2 idle CPU cores)."
    )

    def add_arguments(self, parser):
        from gpu_workers.toy.distill import DistillConfig

        weights = Path(settings.BASE_DIR) / "gpu_workers" / "weights" / "framecast-toy"
        parser.add_argument("--out", type=Path, default=weights / "turbo", help="folder to save the LoRA to")
        parser.add_argument("--teacher", type=Path, default=weights, help="the pipeline folder to distil")
        parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
        parser.add_argument("--no-judge", action="store_true", help="skip the direct judge check at the end")
        defaults = DistillConfig()
        for name in ("seed", "pairs", "train_steps", "rank", "threads"):
            parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))

    def handle(self, *args, **options):
        # Imported only when the command runs: listing commands must not import torch.
        from gpu_workers.toy.distill import DistillConfig, distill

        names = ("seed", "pairs", "train_steps", "rank", "threads")
        config = DistillConfig(**{name: options[name] for name in names})
        summary = distill(
            options["out"], config, device=options["device"], teacher_dir=options["teacher"],
            judge_after=not options["no_judge"],
        )
        self.stdout.write(
            f"Saved the turbo LoRA to {options['out']} in {summary['minutes']['total']} min "
            f"(CPU time {summary['cpu_minutes']} min)"
        )
