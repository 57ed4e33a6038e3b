"""The toy model's diffusers components, at sizes a 2-core CPU trains in well under an hour.

The classes are the real ones behind `WanPipeline` (so the model loads and runs through
the same code as Wan 2.1): `AutoencoderKLWan` at 4× spatial / 4× temporal compression,
`WanTransformer3DModel` of about 1.0M parameters, and a frozen, randomly initialised
`UMT5EncoderModel` behind the word-level tokenizer of gpu_workers/tiny_model.py.
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel
from transformers import UMT5EncoderModel

from gpu_workers import tiny_model

TEXT_DIM = 64
LATENT_CHANNELS = 16
# The scheduler's timestep shift, used both to sample training noise levels and at inference.
SHIFT = 3.0
# Prompts are padded to this many tokens in training exactly as at serving time (Wan's
# cross-attention has no mask, so the padding length changes the output).
MAX_SEQUENCE_LENGTH = 32


def make_tokenizer():
    return tiny_model._make_tokenizer()


def make_text_encoder(vocab_size: int, seed: int) -> UMT5EncoderModel:
    return tiny_model.make_text_encoder(vocab_size, d_model=TEXT_DIM, d_kv=16, d_ff=128, seed=seed).requires_grad_(False)


def make_vae(seed: int) -> AutoencoderKLWan:
    torch.manual_seed(seed)
    return AutoencoderKLWan(
        base_dim=8,
        decoder_base_dim=16,  # the decoder draws the edges: it gets the larger share
        z_dim=LATENT_CHANNELS,
        dim_mult=[1, 2, 2],  # two down-sampling stages: 4× spatial compression
        num_res_blocks=1,
        temperal_downsample=[True, True],  # 4× temporal: 9 frames -> 3 latent frames
        scale_factor_spatial=4,
        scale_factor_temporal=4,
        # Replaced after the autoencoder is trained by the statistics of its latents.
        latents_mean=[0.0] * LATENT_CHANNELS,
        latents_std=[1.0] * LATENT_CHANNELS,
    )


def make_transformer(seed: int) -> WanTransformer3DModel:
    torch.manual_seed(seed)
    return WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=4,
        attention_head_dim=32,
        in_channels=LATENT_CHANNELS,
        out_channels=LATENT_CHANNELS,
        text_dim=TEXT_DIM,
        freq_dim=64,
        ffn_dim=256,
        num_layers=4,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=64,
    )


def make_scheduler() -> FlowMatchEulerDiscreteScheduler:
    return FlowMatchEulerDiscreteScheduler(shift=SHIFT)


def assemble(tokenizer, text_encoder, vae, transformer) -> WanPipeline:
    return WanPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae.eval(),
        scheduler=make_scheduler(),
        transformer=transformer.eval(),
    )


def decode_unclamped(vae: AutoencoderKLWan, z: torch.Tensor) -> torch.Tensor:
    """`AutoencoderKLWan._decode` without its final clamp to [-1, 1]: the clamp passes no
    gradient to pixels that overshoot, which stalls training on saturated colours."""
    vae.clear_cache()
    x = vae.post_quant_conv(z)
    outs = []
    for i in range(z.shape[2]):
        vae._conv_idx = [0]
        outs.append(
            vae.decoder(x[:, :, i : i + 1], feat_cache=vae._feat_map, feat_idx=vae._conv_idx, first_chunk=(i == 0))
        )
    vae.clear_cache()
    return torch.cat(outs, 2)


def encode_mean(vae: AutoencoderKLWan, video: torch.Tensor) -> torch.Tensor:
    """The posterior mean (deterministic latents) of videos in [-1, 1], (B, 3, T, H, W)."""
    moments = vae._encode(video)
    return moments[:, :LATENT_CHANNELS]


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
