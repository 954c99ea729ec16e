"""Key map from the official `unet.pth` (diffusers UNetSpatioTemporalConditionModel naming, plus the ID
adapter's `attn2.processor.id_to_{k,v}` tensors) to ComfyUI's SVD UNet layout (the SGM / ldm naming of
`svd_xt.safetensors` without its `model.diffusion_model.` prefix).

The block arithmetic follows the SGM UNet: each down level holds `layers` resnet(+attention) blocks then a
downsampler; each up level holds `layers + 1` blocks, the last one carrying the upsampler. `layers` is read
from the checkpoint, so smaller UNets with the same layout map as well as SVD-xt.
"""
import re

from ..errors import StableAnimatorError

RESNET_PARTS = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
                "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
TOP_LEVEL = {"conv_in": "input_blocks.0.0", "time_embedding.linear_1": "time_embed.0",
             "time_embedding.linear_2": "time_embed.2", "add_embedding.linear_1": "label_emb.0.0",
             "add_embedding.linear_2": "label_emb.0.2", "conv_norm_out": "out.0", "conv_out": "out.2"}
ADAPTER = re.compile(r"^(.*\.transformer_blocks\.\d+\.attn2)\.processor\.(id_to_[kv])\.weight$")


def layers_per_block(keys, source: str = "the UNet file") -> int:
    found = {int(m.group(1)) for k in keys if (m := re.match(r"down_blocks\.0\.resnets\.(\d+)\.", k))}
    if not found:
        raise StableAnimatorError(f"{source} is not StableAnimator's Animation/unet.pth (no 'down_blocks.0.resnets.*' "
                                  "keys): select unet.pth (or its .safetensors conversion) as unet")
    return max(found) + 1


def _resnet(rest: str) -> str:
    """spatial_res_block.conv1.weight -> in_layers.2.weight; temporal_res_block.* -> time_stack.*"""
    m = re.match(r"^(spatial_res_block|temporal_res_block)\.(\w+)\.(weight|bias)$", rest)
    if m and m.group(2) in RESNET_PARTS:
        prefix = "" if m.group(1) == "spatial_res_block" else "time_stack."
        return f"{prefix}{RESNET_PARTS[m.group(2)]}.{m.group(3)}"
    if rest == "time_mixer.mix_factor":
        return rest
    raise KeyError(rest)


def _attention(rest: str) -> str:
    """Inside a spatio-temporal transformer: same names except the temporal stack and time_pos_embed."""
    if ".processor." in rest:   # only the ID adapter's processor weights exist; they are split out earlier
        raise KeyError(rest)
    rest = rest.replace("temporal_transformer_blocks.", "time_stack.")
    return re.sub(r"^time_pos_embed\.linear_([12])\.", lambda m: f"time_pos_embed.{2 * int(m.group(1)) - 2}.", rest)


def diffusers_to_comfy(key: str, layers: int) -> str:
    """Map one stock diffusers SVD UNet key; raises KeyError for keys outside the layout."""
    for src, dst in TOP_LEVEL.items():
        if key.startswith(src + "."):
            return dst + key[len(src):]
    per_down, per_up = layers + 1, layers + 1
    if m := re.match(r"^down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)$", key):
        level, kind, i, rest = int(m.group(1)), m.group(2), int(m.group(3)), m.group(4)
        block = f"input_blocks.{level * per_down + i + 1}"
        return f"{block}.0.{_resnet(rest)}" if kind == "resnets" else f"{block}.1.{_attention(rest)}"
    if m := re.match(r"^down_blocks\.(\d+)\.downsamplers\.0\.conv\.(weight|bias)$", key):
        return f"input_blocks.{(int(m.group(1)) + 1) * per_down}.0.op.{m.group(2)}"
    if m := re.match(r"^mid_block\.resnets\.([01])\.(.+)$", key):
        return f"middle_block.{2 * int(m.group(1))}.{_resnet(m.group(2))}"
    if m := re.match(r"^mid_block\.attentions\.0\.(.+)$", key):
        return f"middle_block.1.{_attention(m.group(1))}"
    if m := re.match(r"^up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)$", key):
        level, kind, i, rest = int(m.group(1)), m.group(2), int(m.group(3)), m.group(4)
        block = f"output_blocks.{level * per_up + i}"
        return f"{block}.0.{_resnet(rest)}" if kind == "resnets" else f"{block}.1.{_attention(rest)}"
    raise KeyError(key)


def split_official_unet(sd: dict, source: str = "unet.pth", origin: dict | None = None):
    """Official state dict -> (ComfyUI UNet state dict, adapter dict).

    The adapter dict maps the ComfyUI path of each spatial attn2 (e.g.
    'input_blocks.1.1.transformer_blocks.0.attn2') to {'id_to_k': W, 'id_to_v': W}. Upsampler keys need to
    know whether their up level has attentions, so they are resolved after the rest. `origin`, when given,
    is filled with {ComfyUI key: official key}, so that errors can name keys as the file names them.
    """
    keys = list(sd)
    layers = layers_per_block(keys, source)
    up_with_attention = {int(m.group(1)) for k in keys if (m := re.match(r"up_blocks\.(\d+)\.attentions\.", k))}
    unet, adapter, unknown = {}, {}, []
    for key in keys:
        if m := ADAPTER.match(key):
            try:
                path = diffusers_to_comfy(m.group(1) + ".to_q.weight", layers)[: -len(".to_q.weight")]
            except KeyError:
                unknown.append(key)
                continue
            if ".time_stack." in path:   # the official adapter lives on spatial blocks only
                unknown.append(key)
                continue
            adapter.setdefault(path, {})[m.group(2)] = sd[key]
            continue
        if m := re.match(r"^up_blocks\.(\d+)\.upsamplers\.0\.conv\.(weight|bias)$", key):
            level = int(m.group(1))
            sub = 2 if level in up_with_attention else 1
            target = f"output_blocks.{level * (layers + 1) + layers}.{sub}.conv.{m.group(2)}"
        else:
            try:
                target = diffusers_to_comfy(key, layers)
            except KeyError:
                unknown.append(key)
                continue
        unet[target] = sd[key]
        if origin is not None:
            origin[target] = key
    if unknown:
        raise StableAnimatorError(
            f"{source}: {len(unknown)} key(s) are not part of a StableAnimator / SVD UNet, first: {unknown[:5]}. "
            "Is this the official Animation/unet.pth (or its .safetensors conversion)?")
    half = [p for p, kv in adapter.items() if set(kv) != {"id_to_k", "id_to_v"}]
    if half:
        raise StableAnimatorError(f"{source}: ID adapter of {half[0]} has only {sorted(adapter[half[0]])}; need id_to_k and id_to_v")
    return unet, adapter


OFFICIAL_RESNET_EPS = 1e-6
RESNET_NORM = re.compile(r"^(down|up)_blocks\.(\d+)\.resnets\.\d+\.(spatial|temporal)_res_block\.norm[12]\.weight$")


def resnet_norms_with_official_eps(official_keys, source: str = "the UNet file") -> list:
    """ComfyUI paths of the resnet GroupNorms that the official (diffusers) UNet builds with eps=1e-6.

    The SGM layout ComfyUI builds uses 1e-5 everywhere; the diffusers SVD blocks StableAnimator was trained
    and runs with use 1e-6 in every up block and in the down blocks that have attention (the last down block
    and the middle block keep 1e-5)."""
    keys = list(official_keys)
    layers = layers_per_block(keys, source)
    down_with_attention = {int(m.group(1)) for k in keys if (m := re.match(r"down_blocks\.(\d+)\.attentions\.", k))}
    paths = []
    for key in keys:
        m = RESNET_NORM.match(key)
        if m and (m.group(1) == "up" or int(m.group(2)) in down_with_attention):
            paths.append(diffusers_to_comfy(key, layers)[: -len(".weight")])
    return paths
