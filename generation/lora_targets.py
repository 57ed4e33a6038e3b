"""Which LoRA a model takes, from its transformer's config and without torch: the linear
layers a LoRA may adapt, with their input and output sizes, and the check that a file's
tensors fit them.

The module names are those of diffusers' `WanTransformer3DModel` (diffusers 0.42,
models/transformers/transformer_wan.py): per block `attn1` (self-attention) and `attn2`
(cross-attention) with `to_q`, `to_k`, `to_v`, `to_out.0` (dim → dim; the text is projected
to dim before attn2), `attn2.add_k_proj`/`add_v_proj` (added_kv_proj_dim → dim, image to
video models), `ffn.net.0.proj` (dim → ffn_dim) and `ffn.net.2` (ffn_dim → dim); outside the
blocks `condition_embedder.{time_embedder.linear_1, time_embedder.linear_2, time_proj,
text_embedder.linear_1, text_embedder.linear_2}`, `image_embedder.ff.net.*` and `proj_out`.

Two key layouts are accepted, the two diffusers' Wan loader reads
(`WanLoraLoaderMixin.lora_state_dict`):
- diffusers/PEFT: `transformer.<module>.lora_A.weight` [r, in], `.lora_B.weight` [out, r],
  optionally `.lora_B.bias` [out];
- the original Wan / ComfyUI one: `diffusion_model.blocks.N.self_attn.q.lora_down.weight`
  (or lora_A), `.lora_up.weight` (or lora_B), `.alpha` (a scalar), `.diff_b` [out], with
  `self_attn`/`cross_attn` `q k v o` (`k_img`, `v_img`), `ffn.0`/`ffn.2`, `head.head`,
  `time_projection.1`, `text_embedding.0/2`, `time_embedding.0/2`, `img_emb.proj.1/3`, mapped
  as `_convert_non_diffusers_wan_lora_to_diffusers` maps them.
Norm-layer `.diff`/`.diff_b` tensors of the original layout are allowed and ignored, as
diffusers ignores them. Anything else (musubi's `lora_unet_…`, other full-weight `.diff`
tensors, DoRA scales) is refused.
"""

import json
import re
from dataclasses import dataclass

from .safetensors_check import Header

# The published configs of the Wan models in the registry (transformer/config.json on the
# Hugging Face Hub), for a web tier without their weights folder; that folder's own
# config wins when present.
_WAN_PUBLISHED = {
    "wan2.1-t2v-1.3b": {"num_layers": 30, "num_attention_heads": 12, "attention_head_dim": 128, "ffn_dim": 8960,
                        "text_dim": 4096, "freq_dim": 256, "out_channels": 16, "patch_size": [1, 2, 2]},
    "wan2.1-t2v-14b": {"num_layers": 40, "num_attention_heads": 40, "attention_head_dim": 128, "ffn_dim": 13824,
                       "text_dim": 4096, "freq_dim": 256, "out_channels": 16, "patch_size": [1, 2, 2]},
    "wan2.2-ti2v-5b": {"num_layers": 30, "num_attention_heads": 24, "attention_head_dim": 128, "ffn_dim": 14336,
                       "text_dim": 4096, "freq_dim": 256, "out_channels": 48, "patch_size": [1, 2, 2]},
}
LORA_PIPELINES = ("WanPipeline",)


class LoraMismatch(ValueError):
    """The file's tensors are not a LoRA of the model; the message says which tensor and why."""


def transformer_config(spec) -> dict | None:
    """The model's transformer config: its weights folder's, else the published one; None
    when neither is here (or the model is not of a family that takes LoRAs)."""
    if spec.pipeline not in LORA_PIPELINES:
        return None
    folder = spec.weights_path()
    path = folder / "transformer" / "config.json" if folder is not None else None
    if path is not None and path.is_file():
        config = json.loads(path.read_text())
        return config if config.get("_class_name") == "WanTransformer3DModel" else None
    return _WAN_PUBLISHED.get(spec.name)


def wan_targets(config: dict) -> dict[str, tuple[int, int]]:
    """Every linear layer of a WanTransformer3DModel with this config: name → (in, out)."""
    dim = config["num_attention_heads"] * config["attention_head_dim"]
    ffn = config["ffn_dim"]
    patch = 1
    for size in config.get("patch_size", [1, 2, 2]):
        patch *= size
    out_channels = config.get("out_channels") or config.get("in_channels", 16)
    targets = {
        "condition_embedder.time_embedder.linear_1": (config.get("freq_dim", 256), dim),
        "condition_embedder.time_embedder.linear_2": (dim, dim),
        "condition_embedder.time_proj": (dim, 6 * dim),
        "condition_embedder.text_embedder.linear_1": (config.get("text_dim", 4096), dim),
        "condition_embedder.text_embedder.linear_2": (dim, dim),
        "proj_out": (dim, out_channels * patch),
    }
    if config.get("image_dim"):
        image = config["image_dim"]
        targets["condition_embedder.image_embedder.ff.net.0.proj"] = (image, image)
        targets["condition_embedder.image_embedder.ff.net.2"] = (image, dim)
    for block in range(config["num_layers"]):
        for attention in ("attn1", "attn2"):
            for projection in ("to_q", "to_k", "to_v", "to_out.0"):
                targets[f"blocks.{block}.{attention}.{projection}"] = (dim, dim)
        if config.get("added_kv_proj_dim"):
            for projection in ("add_k_proj", "add_v_proj"):
                targets[f"blocks.{block}.attn2.{projection}"] = (config["added_kv_proj_dim"], dim)
        targets[f"blocks.{block}.ffn.net.0.proj"] = (dim, ffn)
        targets[f"blocks.{block}.ffn.net.2"] = (ffn, dim)
    return targets


_ATTENTION = {"q": "to_q", "k": "to_k", "v": "to_v", "o": "to_out.0", "k_img": "add_k_proj", "v_img": "add_v_proj"}
_ORIGINAL_OUTSIDE = {
    "head.head": "proj_out",
    "time_projection.1": "condition_embedder.time_proj",
    "text_embedding.0": "condition_embedder.text_embedder.linear_1",
    "text_embedding.2": "condition_embedder.text_embedder.linear_2",
    "time_embedding.0": "condition_embedder.time_embedder.linear_1",
    "time_embedding.2": "condition_embedder.time_embedder.linear_2",
    "img_emb.proj.1": "condition_embedder.image_embedder.ff.net.0.proj",
    "img_emb.proj.3": "condition_embedder.image_embedder.ff.net.2",
}
_ORIGINAL_BLOCK = re.compile(r"^blocks\.(\d+)\.(?:(self_attn|cross_attn)\.(q|k|v|o|k_img|v_img)|ffn\.(0|2))$")
# Norm-layer deltas of the original layout (lightx2v's distillation LoRAs carry them, zeroed):
# diffusers' converter drops them, so they are allowed and not counted as adapted layers.
_IGNORED_NORM_DIFF = re.compile(r"^diffusion_model\.blocks\.\d+\.(?:\w+\.)*norm\w*\.diff(?:_b)?$")
# What each key's last part means: A (down), B (up), the B bias, alpha.
_DIFFUSERS_PARTS = {"lora_A.weight": "A", "lora_B.weight": "B", "lora_B.bias": "bias"}
_ORIGINAL_PARTS = {"lora_down.weight": "A", "lora_A.weight": "A", "lora_up.weight": "B", "lora_B.weight": "B",
                   "diff_b": "bias", "alpha": "alpha"}


def _original_module(name: str) -> str | None:
    if name in _ORIGINAL_OUTSIDE:
        return _ORIGINAL_OUTSIDE[name]
    match = _ORIGINAL_BLOCK.match(name)
    if match is None:
        return None
    block, attention, projection, ffn = match.groups()
    if ffn is not None:
        return f"blocks.{block}.ffn.{'net.0.proj' if ffn == '0' else 'net.2'}"
    return f"blocks.{block}.{'attn1' if attention == 'self_attn' else 'attn2'}.{_ATTENTION[projection]}"


def _split(key: str) -> tuple[str, str] | None:
    """(module, part) of a tensor name, in either layout; None if it is neither."""
    for prefix, parts, to_module in (
        ("transformer.", _DIFFUSERS_PARTS, lambda module: module),
        ("diffusion_model.", _ORIGINAL_PARTS, _original_module),
    ):
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix):]
        for suffix, part in parts.items():
            if rest.endswith("." + suffix):
                module = to_module(rest[: -len(suffix) - 1])
                return (module, part) if module else None
        return None
    return None


@dataclass(frozen=True)
class LoraShape:
    rank: int  # the largest rank of its modules
    modules: int


def lora_shape(header: Header, targets: dict[str, tuple[int, int]], *, model: str) -> LoraShape:
    """Check that the tensors of `header` are a LoRA of `model` (whose linear layers are
    `targets`): every tensor a known part of a known module, each module's A [r, in] and
    B [out, r] with the module's real sizes. Raises LoraMismatch."""
    modules: dict[str, dict[str, tuple[str, tuple[int, ...]]]] = {}
    prefixes = set()
    for key, tensor in header.tensors.items():
        if _IGNORED_NORM_DIFF.match(key):
            prefixes.add("diffusion_model")
            continue  # diffusers drops these (zeroed norm offsets in distillation LoRAs); so do we
        split = _split(key)
        if split is None:
            raise LoraMismatch(
                f"Tensor {key!r} is not a LoRA weight of a Wan transformer: expected transformer.<module>.lora_A/lora_B "
                "(diffusers) or diffusion_model.<module>.lora_down/lora_up (original Wan) names."
            )
        module, part = split
        prefixes.add(key.split(".", 1)[0])
        if module not in targets:
            raise LoraMismatch(f"Tensor {key!r} adapts {module}, which {model} does not have: this LoRA is for another model.")
        if part in modules.setdefault(module, {}):
            raise LoraMismatch(f"Tensor {key!r} repeats the {part} of {module} under another name.")
        modules[module][part] = (key, tensor.shape)
    if not modules:
        raise LoraMismatch("The file holds no tensors: it is not a LoRA.")
    if len(prefixes) > 1:
        raise LoraMismatch("The file mixes diffusers' (transformer.) and the original (diffusion_model.) names.")
    rank = 0
    for module, parts in sorted(modules.items()):
        in_features, out_features = targets[module]
        if "A" not in parts or "B" not in parts:
            missing = "lora_A (down)" if "A" not in parts else "lora_B (up)"
            raise LoraMismatch(f"{module} has no {missing} weight: every adapted layer needs both.")
        (key_a, shape_a), (key_b, shape_b) = parts["A"], parts["B"]
        if len(shape_a) != 2 or len(shape_b) != 2 or shape_a[0] < 1:
            raise LoraMismatch(f"{key_a} and {key_b} must be matrices of rank at least 1.")
        module_rank = shape_a[0]
        if shape_a[1] != in_features or shape_b[0] != out_features:
            raise LoraMismatch(
                f"{module} is {in_features} → {out_features} in {model}, but this LoRA's is {shape_a[1]} → {shape_b[0]}: "
                "it is for another model."
            )
        if shape_b[1] != module_rank:
            raise LoraMismatch(f"{key_a} has rank {module_rank} but {key_b} has rank {shape_b[1]}.")
        if "bias" in parts and parts["bias"][1] != (out_features,):
            raise LoraMismatch(f"{parts['bias'][0]} must be a vector of {out_features}.")
        if "alpha" in parts and parts["alpha"][1] not in ((), (1,)):
            raise LoraMismatch(f"{parts['alpha'][0]} must be a single number.")
        rank = max(rank, module_rank)
    return LoraShape(rank=rank, modules=len(modules))
