"""Live previews: a cheap look at the frames while they are being denoised.

Decoding latents with the VAE at every step would cost as much as a step. Instead, as
ComfyUI and InvokeAI do, each latent pixel is projected to RGB by a linear map (channels →
R, G, B plus a bias). We fit that map ourselves, once per loaded pipeline, by encoding a
few solid-colour images with the model's own VAE and solving least squares — so it works
for any VAE, the tiny default and real checkpoints alike, with no table copied from
elsewhere. Previews are rate-limited (`PreviewLimiter`) to stay under 2% of step time.
"""

import base64
import io
import itertools
import time

import numpy as np
import torch
from PIL import Image

MAX_SIDE = 96  # pixels: a thumbnail in the progress card
FIT_SIDE = 64


def _normalised(pipe, raw: torch.Tensor) -> torch.Tensor:
    """VAE latents in the pipeline's (normalised) space, as the denoiser sees them."""
    config = pipe.vae.config
    channels = raw.shape[1]
    mean = torch.tensor(getattr(config, "latents_mean", None) or [0.0] * channels).view(1, channels, 1, 1, 1)
    std = torch.tensor(getattr(config, "latents_std", None) or [1.0] * channels).view(1, channels, 1, 1, 1)
    return (raw.float().cpu() - mean) / std


@torch.no_grad()
def fit_latent_rgb(pipe) -> tuple[torch.Tensor, torch.Tensor]:
    """(weights [C, 3], bias [3]) mapping a latent pixel to RGB in [0, 1]; cached on `pipe`."""
    cached = getattr(pipe, "_framecast_latent_rgb", None)
    if cached is not None:
        return cached
    levels = (0.0, 0.5, 1.0)
    colours = torch.tensor(list(itertools.product(levels, levels, levels)))  # 27 solid colours
    images = colours.view(-1, 3, 1, 1, 1).expand(-1, 3, 1, FIT_SIDE, FIT_SIDE) * 2 - 1
    vae = pipe.vae
    raw = vae.encode(images.to(device=vae.device, dtype=vae.dtype)).latent_dist.mode()
    latents = _normalised(pipe, raw)  # [N, C, 1, h, w]
    samples = latents.permute(0, 2, 3, 4, 1).reshape(-1, latents.shape[1])
    targets = colours.repeat_interleave(samples.shape[0] // colours.shape[0], dim=0)
    design = torch.cat([samples, torch.ones(samples.shape[0], 1)], dim=1)
    solution = torch.linalg.lstsq(design, targets).solution  # [C + 1, 3]
    pipe._framecast_latent_rgb = (solution[:-1], solution[-1])
    return pipe._framecast_latent_rgb


@torch.no_grad()
def preview_rgb(latents: torch.Tensor, weights: torch.Tensor, bias: torch.Tensor) -> np.ndarray:
    """The middle latent frame of `latents` [1, C, T, h, w] as uint8 RGB [h, w, 3]."""
    frame = latents[0, :, latents.shape[2] // 2].float().cpu()  # [C, h, w]
    rgb = torch.einsum("chw,cr->hwr", frame, weights) + bias
    return (rgb.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def preview_data_url(rgb: np.ndarray, *, max_side: int = MAX_SIDE) -> str:
    image = Image.fromarray(rgb)
    scale = max_side / max(image.size)
    image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=70)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


class PreviewLimiter:
    """Decides when a preview may be made, so previews cost at most `budget` of the time:
    after a preview that took `c` seconds, the next waits at least c / budget seconds (and
    at least `min_interval`)."""

    def __init__(self, *, budget: float = 0.02, min_interval: float = 1.0, clock=time.monotonic):
        self.budget, self.min_interval, self.clock = budget, min_interval, clock
        self.next_at = 0.0  # the first step may show one at once
        self.spent = 0.0

    def due(self) -> bool:
        return self.clock() >= self.next_at

    def record(self, cost: float) -> None:
        self.spent += cost
        self.next_at = self.clock() + max(self.min_interval, cost / self.budget)
