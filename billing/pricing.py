"""What a job costs in credits, from what it costs to run.

Denoising dominates a job's GPU time and grows with pixels × frames × steps, so the price
does too, relative to a reference job: Wan 2.1 T2V 1.3B at 832×480, 81 frames, 50 steps
(about 100 s on one H100, see ../shared/FACTS.md) costs REFERENCE_CREDITS. Each model
scales that by its own `credit_factor` (a 14B model costs more per pixel-step). The fast
mode costs less per step; the turbo speed runs a model's few-step distillation adapter
(generation/models.toml [models.turbo]) at that adapter's own `price_factor` per step and
its own, much smaller step count: on Wan 2.1 1.3B 4 turbo steps at 0.55 against 50
standard ones cost 4.4% of the standard price. Each team LoRA a job applies adds
LORA_SURCHARGE to its price (generation/loras.py). Prices round up to whole credits, at least
one.
"""

import math

REFERENCE_WORK = 832 * 480 * 81 * 50
REFERENCE_CREDITS = 100
# The fast mode (First-Block Cache at threshold 0.1) took Wan 2.1 1.3B from 222 s to 139 s
# in published measurements (../shared/FACTS.md): it costs about 0.63 of the GPU time,
# and is priced at 0.65.
SPEED_FACTORS = {"standard": 1.0, "fast": 0.65}
# A LoRA applied unfused (PEFT) adds two rank-r matmuls beside every layer it adapts:
# r·(in+out)/(in·out) more work on those layers, about 4% at rank 32 on Wan 1.3B's 1536-wide
# layers and 8% at rank 64, plus the kernel launches of the extra layers. Priced at 10% of
# the job per LoRA, whatever its rank (the plan bounds the rank).
LORA_SURCHARGE = 0.10


def price_credits(
    *,
    credit_factor: float,
    width: int,
    height: int,
    num_frames: int,
    steps: int,
    speed: str = "standard",
    speed_factor: float | None = None,
    loras: int = 0,
) -> int:
    """`speed_factor`: a step's price at this speed relative to a standard step (the
    model's adapter gives turbo's); by default the fixed factor of `speed`. `loras`: how
    many team LoRAs the job applies."""
    factor = SPEED_FACTORS[speed] if speed_factor is None else speed_factor
    work = width * height * num_frames * steps
    price = REFERENCE_CREDITS * credit_factor * factor * work / REFERENCE_WORK
    if loras:
        # In whole percent: 100 × 1.1 in floats is 110.00000000000001, which rounds up to 111.
        price = price * (100 + round(100 * LORA_SURCHARGE) * loras) / 100
    return max(1, math.ceil(price))
