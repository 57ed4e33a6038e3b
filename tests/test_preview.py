"""Live previews: a latent-to-RGB map fitted from the model's own VAE, and a rate limit."""

import base64
import io

import pytest
import torch
from PIL import Image

from gpu_workers import preview
from gpu_workers.pipeline import load_pipeline


@pytest.fixture(scope="module")
def pipe(tiny_model):
    return load_pipeline(tiny_model)


def latents_of(pipe, colour) -> torch.Tensor:
    image = torch.tensor(colour, dtype=torch.float).view(1, 3, 1, 1, 1).expand(1, 3, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        raw = pipe.vae.encode(image).latent_dist.mode()
    return preview._normalised(pipe, raw)


def mean_rgb(pipe, colour):
    rgb = preview.preview_rgb(latents_of(pipe, colour), *preview.fit_latent_rgb(pipe))
    return rgb.reshape(-1, 3).mean(0)


def test_the_fitted_projection_tells_colours_apart(pipe):
    """Even the tiny model's untrained VAE keeps enough of the colour for the map to see it."""
    red, green = mean_rgb(pipe, [1, 0, 0]), mean_rgb(pipe, [0, 1, 0])
    assert red[0] > green[0] and green[1] > red[1]
    assert preview.fit_latent_rgb(pipe) is preview.fit_latent_rgb(pipe)  # fitted once per pipeline


def test_a_preview_is_a_small_jpeg(pipe):
    latents = torch.randn(1, 16, 3, 6, 8)
    url = preview.preview_data_url(preview.preview_rgb(latents, *preview.fit_latent_rgb(pipe)))
    assert url.startswith("data:image/jpeg;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert image.format == "JPEG" and max(image.size) == preview.MAX_SIDE and image.size == (96, 72)


def test_previews_stay_under_two_percent_of_the_time():
    now = [0.0]
    limiter = preview.PreviewLimiter(budget=0.02, min_interval=1.0, clock=lambda: now[0])
    shown = 0
    for _ in range(200):  # 200 steps of 0.5 s, each preview costing 30 ms
        if limiter.due():
            now[0] += 0.03
            limiter.record(0.03)
            shown += 1
        now[0] += 0.5
    assert shown >= 50  # one every ~1.5 s: previews keep coming
    assert limiter.spent / now[0] <= 0.02
    slow = preview.PreviewLimiter(budget=0.02, min_interval=1.0, clock=lambda: now[0])
    slow.record(0.5)  # an expensive preview pushes the next one 25 s away
    now[0] += 20
    assert not slow.due()
