"""Generic torch tools for differentiating through networks inside a host that runs under
torch.inference_mode(): block checkpointing that can be switched per run, a count of the activations autograd
saves for backward, and turning inference-tensor weights back into normal ones. Plain torch, no host imports."""
from __future__ import annotations

import weakref

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint


class Checkpointed(nn.Module):
    """Runs the wrapped block under torch.utils.checkpoint when enabled and its input needs a gradient: only
    the block's inputs are kept, its activations are recomputed during backward."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner
        self.enabled = True

    def forward(self, *args, **kwargs):
        if self.enabled and torch.is_grad_enabled() and any(isinstance(a, torch.Tensor) and a.requires_grad for a in args):
            return checkpoint(self.inner, *args, use_reentrant=False, **kwargs)
        return self.inner(*args, **kwargs)


def set_checkpointing(net: nn.Module, enabled: bool) -> None:
    """Switch every Checkpointed block of `net` on or off."""
    for m in net.modules():
        if isinstance(m, Checkpointed):
            m.enabled = enabled


def saved_activation_bytes(module: nn.Module, x: torch.Tensor) -> int:
    """Bytes that autograd keeps for backward when module(x) runs with x requiring a gradient: one forward
    whose saved tensors are counted (each storage once, the module's own weights and buffers excluded) and
    dropped at once, so measuring costs no more memory than an inference pass. Dropped tensors free their
    memory, which later tensors may reuse: an address counts again once the tensor seen there is gone."""
    resident = {t.untyped_storage().data_ptr() for t in list(module.parameters()) + list(module.buffers())}
    live: dict[int, tuple] = {}   # address -> (weak reference to the tensor seen there, its storage's bytes)
    total = 0

    def pack(t):
        nonlocal total
        address = t.untyped_storage().data_ptr()
        if address in resident:
            return None
        seen = live.get(address)
        if seen is None or seen[0]() is None:   # new memory, or memory freed and reused since
            live[address] = (weakref.ref(t), t.untyped_storage().nbytes())
            total += live[address][1]
        return None

    with torch.inference_mode(False), torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda _: None):
        module(x.detach().clone().requires_grad_(True))
    return total


def autograd_ready(module: nn.Module) -> nn.Module:
    """Replace weights that are inference tensors (moved by a load under inference mode) by normal clones,
    so autograd can differentiate through the module. Values, devices and dtypes are unchanged."""
    with torch.inference_mode(False):
        for m in module.modules():
            for name, p in list(m.named_parameters(recurse=False)):
                if p.is_inference():
                    setattr(m, name, nn.Parameter(p.detach().clone(), requires_grad=False))
            for name, b in list(m.named_buffers(recurse=False)):
                if b is not None and b.is_inference():
                    setattr(m, name, b.detach().clone())
    return module.eval().requires_grad_(False)
