"""The distribution-aware ID adapter of StableAnimator's spatial cross-attentions.

The context holds the CLIP image token first and the face tokens after it. The image branch attends over
the CLIP token with the block's own to_k/to_v; the ID branch attends over the face tokens with the adapter's
id_to_k/id_to_v. The ID branch is then re-normalised, per frame, to the mean and (unbiased) standard deviation
of the image branch over all tokens and channels, and added before to_out (official
AnimationIDAttnNormalizedProcessor).
"""
import torch
import torch.nn.functional as F
from torch import nn

EPS = 1e-5


def align_to(id_out: torch.Tensor, img_out: torch.Tensor) -> torch.Tensor:
    """Give id_out (B,N,C) the per-sample mean and std of img_out over (N,C)."""
    id_mean = id_out.mean(dim=(1, 2), keepdim=True)
    id_std = id_out.std(dim=(1, 2), keepdim=True)
    img_mean = img_out.mean(dim=(1, 2), keepdim=True)
    img_std = img_out.std(dim=(1, 2), keepdim=True)
    return (id_out - id_mean) * (img_std / (id_std + EPS)) + img_mean


def sdpa_attention(q, k, v, heads):
    """(B,N,H*D) attention with PyTorch's kernel; the default when no host attention is supplied."""
    b, _, inner = q.shape
    q, k, v = (t.view(b, -1, heads, inner // heads).transpose(1, 2) for t in (q, k, v))
    return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, -1, inner)


class IDCrossAttention(nn.Module):
    """Stands in for one spatial attn2. It keeps the original projections under their own names (to_q, to_k,
    to_v, to_out), so weight patches such as LoRAs that address them still find them."""

    def __init__(self, attn2: nn.Module, id_to_k: nn.Module, id_to_v: nn.Module, scale: float = 1.0, attention=None):
        super().__init__()
        self.to_q, self.to_k, self.to_v, self.to_out = attn2.to_q, attn2.to_k, attn2.to_v, attn2.to_out
        self.id_to_k, self.id_to_v = id_to_k, id_to_v
        self.heads = attn2.heads
        self.scale = scale
        # attention(q, k, v, heads, transformer_options) -> (B,N,C); the host passes its optimised kernel.
        self.attention = attention or (lambda q, k, v, heads, transformer_options: sdpa_attention(q, k, v, heads))

    def forward(self, x, context=None, value=None, mask=None, transformer_options={}):
        if context is None:
            raise ValueError("StableAnimator's ID attention needs a context (CLIP token + face tokens)")
        q = self.to_q(x)
        image_ctx, face_ctx = context[:, :1], context[:, 1:]
        image_value = image_ctx if value is None else value[:, :1]
        out = self.attention(q, self.to_k(image_ctx), self.to_v(image_value), self.heads, transformer_options)
        if face_ctx.shape[1] > 0 and self.scale != 0:
            face_ctx = face_ctx.to(q.dtype)
            id_out = self.attention(q, self.id_to_k(face_ctx), self.id_to_v(face_ctx), self.heads, transformer_options)
            out = out + self.scale * align_to(id_out, out)
        return self.to_out(out)
