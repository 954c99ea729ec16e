"""Input checks shared by every node: combos, numeric ranges, weight names and image values.

ComfyUI 0.3.75 never checks V3 combo values, and it skips its own min/max check for any input a node's
validate_inputs names (for all of them when validate_inputs takes **kwargs). So each node hands all its
values to `check_inputs`, which checks every widget against the node's live schema:

    @classmethod
    def validate_inputs(cls, **values):
        return check_inputs(cls, values, weights={"unet": "stableanimator"}, rules=[my_rule])

Problems are raised, not returned: ComfyUI copies a returned message once per input of the node (13 copies
for the conditioning node), while a raised one is reported once, under the node, before anything runs.
Values of linked inputs are not known at validation (ComfyUI passes None); they are left to run time.
"""
from __future__ import annotations

import math

import folder_paths
from comfy_api.latest import io

from ..stableanimator_core.errors import StableAnimatorError
from ..stableanimator_core.onnx_providers import provider_problem
from . import model_folders


def node_name(cls, schema=None) -> str:
    """The node's display name as the user sees it on the canvas. (Not cached per class: ComfyUI calls nodes on a
    fresh clone of their class each time.)"""
    schema = schema or cls.define_schema()
    return schema.display_name or schema.node_id


def canonical(cls, name: str, value):
    """A combo value with an old label (cls.COMBO_ALIASES) replaced by the current one: saved workflows
    keep loading after an option is renamed."""
    return getattr(cls, "COMBO_ALIASES", {}).get(name, {}).get(value, value)


def _shown(options, limit: int = 12) -> str:
    shown = ", ".join(repr(o) for o in options[:limit])
    return f"[{shown}{', ...' if len(options) > limit else ''}]"


def _combo_problem(cls, inp, value) -> str | None:
    options = list(inp.options or [])
    if value in options or canonical(cls, inp.id, value) in options:
        return None
    return f"{inp.id} '{value}' is not one of {_shown(options)}; pick one from the list"


def _number_problem(inp, value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{inp.id} must be a number, got {value!r}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{inp.id} is {value}; enter a finite number"
    if inp.min is not None and value < inp.min:
        return f"{inp.id} = {value} is below its minimum {inp.min}"
    if inp.max is not None and value > inp.max:
        return f"{inp.id} = {value} is above its maximum {inp.max}"
    return None


def weight_problem(input_name: str, key: str, name) -> str | None:
    """A weight file name must stay inside its model folder and exist there."""
    if not isinstance(name, str) or not name.strip():
        return f"{input_name}: no file is chosen; put the file into {model_folders.folder_hint(key)} and pick it"
    if model_folders.leaves_folder(name):
        return (f"{input_name} '{name}' points outside the {key} model folder; only files inside "
                f"{model_folders.folder_hint(key)} can be used: pick one from the list")
    if folder_paths.get_full_path(key, name) is None:
        return f"{input_name}: {model_folders.missing_message(key, name)}"
    return None


def check_inputs(cls, values: dict, weights: dict | None = None, rules=()) -> bool:
    """validate_inputs for a V3 node: every combo in its options (or a known old label), every number finite
    and within min/max, every weight name (weights: input -> folder key) inside its folder and present, then
    each rule(values) -> message or None, called only when its inputs are known. Raises StableAnimatorError
    naming the node, the input and the fix; returns True."""
    weights = weights or {}
    schema = cls.define_schema()   # fresh: file lists are the live ones
    problems = []
    for inp in schema.inputs:
        value = values.get(inp.id)
        if value is None:
            continue
        if inp.id in weights:   # a folder key, or None when a rule checks the name
            problem = weight_problem(inp.id, weights[inp.id], value) if weights[inp.id] else None
        elif isinstance(inp, io.Combo.Input):
            problem = _combo_problem(cls, inp, value)
        elif isinstance(inp, (io.Int.Input, io.Float.Input)):
            problem = _number_problem(inp, value)
        else:
            problem = None
        if problem:
            problems.append(problem)
    if not problems:   # cross-input rules assume each value is valid on its own
        for rule in rules:
            problem = rule(values)
            if problem and problem is not True:
                problems.append(problem)
    if problems:
        raise StableAnimatorError(f"{node_name(cls, schema)}: " + "; ".join(problems))
    return True


def provider_rule(cls, name: str):
    """A rule: the onnxruntime provider chosen in input `name` exists in this onnxruntime."""
    def rule(values):
        if values.get(name) is None:
            return None
        problem = provider_problem(canonical(cls, name, values[name]))
        return f"{name} {problem}" if problem else None
    return rule


def known(values: dict, *names) -> bool:
    """True when every named value is set (not linked), for rules."""
    return all(values.get(n) is not None for n in names)


# What made a bad input, per kind of input: the hint in require_finite's message.
FINITE_HINTS = {
    "IMAGE": "The node that made it produced invalid numbers (often an fp16 overflow in an upscaler or VAE); fix or "
             "replace that node, or add a clamp, before this one.",
    "LATENT": "The sampler that made this latent (Animator Sampler or KSampler), or a latent node after it, "
              "produced them, not the VAE: a sampling MODEL in fp16 can overflow (pick bf16 or fp32 as dtype in Load "
              "Animator Models) or a node between the sampler and this one may have broken it; fix that stage and "
              "sample again.",
}


def require_finite(cls, input_name: str, tensor, kind: str = "IMAGE"):
    """Refuse NaN or infinite values in an IMAGE or MASK (kind "IMAGE") or a LATENT's samples (kind "LATENT") at
    run time, naming the node, the input and the stage that most likely made them."""
    import torch
    if tensor is None or not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
        return tensor
    bad = ~torch.isfinite(tensor)
    if bool(bad.any()):
        pixels = tensor.ndim == 4 and kind == "IMAGE"
        if pixels:   # IMAGE (frames, height, width, channels): count pixels
            bad = bad.any(-1)
        count, total = int(bad.sum()), bad.numel()
        frames = sorted({int(i) for i in bad.reshape(bad.shape[0], -1).any(1).nonzero().flatten()}) if tensor.ndim >= 3 else []
        where = f", in frame(s) {', '.join(map(str, frames[:10]))}{' ...' if len(frames) > 10 else ''}" if frames else ""
        raise StableAnimatorError(
            f"{node_name(cls)}: input '{input_name}' has NaN or infinite values in {count} of {total} "
            f"{'pixels' if pixels else 'values'}{where}. {FINITE_HINTS[kind]}")
    return tensor
