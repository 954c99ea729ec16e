"""Reading weight files safely and checking them against the layout a module expects."""
import os
import pickle
import zipfile

import torch

from .errors import StableAnimatorError

SHOW = 5  # how many offending keys an error message lists


def read_state_dict(path: str) -> dict:
    """A flat {name: tensor} dict from a .safetensors or .pth/.pt file. `.pth` files are read with
    weights_only=True (no code from the file runs) and memory-mapped, so a 6 GB unet.pth is not copied."""
    name = os.path.basename(path)
    if not os.path.isfile(path):
        raise StableAnimatorError(f"{path} does not exist")
    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file
            sd = load_file(path, device="cpu")
        else:
            try:
                sd = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as e:
                if "mmap" not in str(e):
                    raise
                sd = torch.load(path, map_location="cpu", weights_only=True)  # old (non-zip) format
    except pickle.UnpicklingError as e:
        raise StableAnimatorError(
            f"{name} was refused: it holds Python objects besides tensors, and loading those could run code "
            f"({str(e).splitlines()[0][:200]}). Use the official file, or convert a trusted one to .safetensors.") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as e:
        raise StableAnimatorError(
            f"{name} could not be read; it is truncated or not a weight file ({type(e).__name__}: {str(e)[:200]}). "
            "Download it again.") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise StableAnimatorError(f"{name} is not a flat state dict of tensors")
    return sd


def layout_differences(sd: dict, expected: dict) -> tuple[list, list, list]:
    """(missing keys, unexpected keys, keys whose shape differs) of `sd` against `expected` ({name: shape})."""
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    wrong = [k for k in expected if k in sd and tuple(sd[k].shape) != tuple(expected[k])]
    return missing, unexpected, wrong


def check_layout(sd: dict, expected: dict, source: str, names: dict | None = None) -> None:
    """Refuse a state dict whose keys or shapes differ from `expected` ({name: shape}). `names` maps keys to
    how the file itself spells them, for the message (missing keys keep the expected name)."""
    def shown(k):
        return names.get(k, k) if names else k
    missing, unexpected, wrong = layout_differences(sd, expected)
    unexpected = [shown(k) for k in unexpected]
    wrong = [f"{shown(k)} {tuple(sd[k].shape)} (expected {tuple(expected[k])})" for k in wrong]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s), first: {missing[:SHOW]}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s), first: {unexpected[:SHOW]}")
    if wrong:
        problems.append(f"{len(wrong)} key(s) with the wrong shape, first: {wrong[:SHOW]}")
    if problems:
        raise StableAnimatorError(f"{source} does not match the expected layout: " + "; ".join(problems))


def build_strict(cls, sd: dict, source: str, **kwargs):
    """cls.from_state_dict_shapes(sd) with every weight loaded strictly; clear errors otherwise."""
    try:
        module = cls.from_state_dict_shapes(sd, **kwargs)
    except (KeyError, IndexError, ValueError, ZeroDivisionError) as e:
        raise StableAnimatorError(f"{source} is not a {cls.__name__} checkpoint: cannot read its layout ({e!r}). "
                                  "Check that the right file is selected.") from None
    check_layout(sd, {k: v.shape for k, v in module.state_dict().items()}, source)
    module.load_state_dict(sd, strict=True)
    return module
