"""The global content-aware face encoder (the official FusionFaceId): a raw ArcFace embedding plus the
CLIP image embedding -> face tokens for the ID adapter.

Parameter names match the official `face_encoder.pth` (56 tensors). Dimensions, depth and token count are
read from the state dict; the head width (64) is the official one.
"""
import torch
from torch import nn

HEAD_DIM = 64


class PerceiverAttention(nn.Module):
    """Face tokens (queries) attend over [CLIP context; face tokens]."""

    def __init__(self, dim, operations=nn):
        super().__init__()
        self.heads = dim // HEAD_DIM
        self.norm1 = operations.LayerNorm(dim)
        self.norm2 = operations.LayerNorm(dim)
        self.to_q = operations.Linear(dim, dim, bias=False)
        self.to_kv = operations.Linear(dim, dim * 2, bias=False)
        self.to_out = operations.Linear(dim, dim, bias=False)

    def forward(self, context, latents):
        context, latents = self.norm1(context), self.norm2(latents)
        b, n, d = latents.shape
        q = self.to_q(latents)
        k, v = self.to_kv(torch.cat([context, latents], dim=1)).chunk(2, dim=-1)

        def heads(t):
            return t.view(b, -1, self.heads, d // self.heads).transpose(1, 2)

        # The official code computes this softmax in fp32.
        q, k, v = heads(q), heads(k), heads(v)
        weights = (q.float() @ k.float().transpose(-1, -2) * (d // self.heads) ** -0.5).softmax(dim=-1)
        out = (weights.to(v.dtype) @ v).transpose(1, 2).reshape(b, n, d)
        return self.to_out(out)


def feed_forward(dim, mult, operations):
    return nn.Sequential(operations.LayerNorm(dim), operations.Linear(dim, dim * mult, bias=False), nn.GELU(),
                         operations.Linear(dim * mult, dim, bias=False))


class FacePerceiver(nn.Module):
    def __init__(self, dim, context_dim, depth, ff_mult=4, operations=nn):
        super().__init__()
        self.proj_in = operations.Linear(context_dim, dim)
        self.proj_out = operations.Linear(dim, dim)
        self.norm_out = operations.LayerNorm(dim)
        self.layers = nn.ModuleList(
            nn.ModuleList([PerceiverAttention(dim, operations), feed_forward(dim, ff_mult, operations)]) for _ in range(depth))

    def forward(self, latents, context):
        context = self.proj_in(context)
        for attention, ff in self.layers:
            latents = attention(context, latents) + latents
            latents = ff(latents) + latents
        return self.norm_out(self.proj_out(latents))


class FaceEncoder(nn.Module):
    """FusionFaceId: (id_embeds (B,id_dim), clip_embeds (B,1,clip_dim)) -> (B, num_tokens, token_dim)."""

    def __init__(self, token_dim=1024, id_dim=512, clip_dim=1024, num_tokens=4, depth=4, ff_mult=4, operations=nn):
        super().__init__()
        self.num_tokens, self.token_dim = num_tokens, token_dim
        self.proj = nn.Sequential(operations.Linear(id_dim, id_dim * 2), nn.GELU(),
                                  operations.Linear(id_dim * 2, token_dim * num_tokens))
        self.norm = operations.LayerNorm(token_dim)
        self.fusion_model = FacePerceiver(token_dim, clip_dim, depth, ff_mult, operations)

    @classmethod
    def from_state_dict_shapes(cls, sd, operations=nn):
        token_dim = sd["norm.weight"].shape[0]
        hidden, id_dim = sd["proj.0.weight"].shape
        if hidden != 2 * id_dim:
            raise ValueError(f"proj.0.weight {tuple(sd['proj.0.weight'].shape)}: expected twice the id width")
        depth = len({k.split(".")[2] for k in sd if k.startswith("fusion_model.layers.")})
        return cls(token_dim=token_dim, id_dim=id_dim, clip_dim=sd["fusion_model.proj_in.weight"].shape[1],
                   num_tokens=sd["proj.2.weight"].shape[0] // token_dim, depth=depth,
                   ff_mult=sd["fusion_model.layers.0.1.1.weight"].shape[0] // token_dim, operations=operations)

    def forward(self, id_embeds, clip_embeds):
        tokens = self.norm(self.proj(id_embeds).reshape(-1, self.num_tokens, self.token_dim))
        return self.fusion_model(tokens, clip_embeds)  # the official `shortcut` is off: the fused tokens only
