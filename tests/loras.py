"""LoRA files for tests, made without torch: real ones for a model's transformer config
(numpy + safetensors' own writer) and hostile ones put together byte by byte."""

import json
import struct

import numpy as np
from safetensors.numpy import save

from generation.lora_targets import wan_targets

# Original Wan names of diffusers' block modules (generation.lora_targets maps them back).
ORIGINAL = {"attn1.to_q": "self_attn.q", "attn1.to_k": "self_attn.k", "attn1.to_v": "self_attn.v",
            "attn1.to_out.0": "self_attn.o", "attn2.to_q": "cross_attn.q", "attn2.to_k": "cross_attn.k",
            "attn2.to_v": "cross_attn.v", "attn2.to_out.0": "cross_attn.o", "ffn.net.0.proj": "ffn.0",
            "ffn.net.2": "ffn.2"}


def tiny_config(tiny_model) -> dict:
    return json.loads((tiny_model / "transformer" / "config.json").read_text())


def lora_bytes(config: dict, *, rank: int = 4, dtype=np.float16, layout: str = "diffusers", seed: int = 0,
               modules: tuple[str, ...] = ("attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0", "ffn.net.0.proj",
                                           "ffn.net.2"),
               with_alpha: bool = False) -> bytes:
    """A LoRA of rank `rank` on `modules` of every block of a Wan transformer of `config`."""
    rng = np.random.default_rng(seed)
    targets = wan_targets(config)
    tensors = {}
    for block in range(config["num_layers"]):
        for module in modules:
            in_features, out_features = targets[f"blocks.{block}.{module}"]
            down = (rng.standard_normal((rank, in_features)) * 0.01).astype(dtype)
            up = (rng.standard_normal((out_features, rank)) * 0.01).astype(dtype)
            if layout == "diffusers":
                name = f"transformer.blocks.{block}.{module}"
                tensors[f"{name}.lora_A.weight"], tensors[f"{name}.lora_B.weight"] = down, up
            else:
                name = f"diffusion_model.blocks.{block}.{ORIGINAL[module]}"
                tensors[f"{name}.lora_down.weight"], tensors[f"{name}.lora_up.weight"] = down, up
                if with_alpha:
                    tensors[f"{name}.alpha"] = np.array(rank, dtype=dtype)
    return save(tensors, metadata={"format": "pt"})


def raw_file(header, data: bytes = b"", *, length: int | None = None) -> bytes:
    """A file in the safetensors layout from a header (a dict, or the header's bytes as
    they are) and data bytes; `length` overrides the header length it declares."""
    encoded = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(encoded) if length is None else length) + encoded + data
