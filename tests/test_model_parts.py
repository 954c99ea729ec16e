"""The StableAnimator parts against direct tensor computations written out here."""
import torch
import torch.nn.functional as F

from stableanimator_core.model.face_encoder import FaceEncoder
from stableanimator_core.model.id_attention import IDCrossAttention, align_to
from stableanimator_core.model.pose_net import PoseNet


def test_alignment_gives_the_image_branch_statistics_per_frame():
    g = torch.Generator().manual_seed(0)
    img, ident = torch.randn(3, 7, 10, generator=g) * 2 + 1, torch.randn(3, 7, 10, generator=g) * 5 - 3
    out = align_to(ident, img)
    for b in range(3):
        flat_img, flat_id = img[b].flatten(), ident[b].flatten()
        mu, sd = flat_img.mean(), flat_img.std(unbiased=True)
        expected = (flat_id - flat_id.mean()) * sd / (flat_id.std(unbiased=True) + 1e-5) + mu
        assert torch.allclose(out[b].flatten(), expected, atol=1e-5)
        assert torch.allclose(out[b].mean(), mu, atol=1e-5)


class Attn2:
    """Stand-in for ComfyUI's CrossAttention: projections and a head count."""

    def __init__(self, dim, ctx, heads, g):
        self.heads = heads
        self.to_q, self.to_k, self.to_v = (torch.nn.Linear(i, dim, bias=False) for i in (dim, ctx, ctx))
        self.to_out = torch.nn.Sequential(torch.nn.Linear(dim, dim), torch.nn.Dropout(0.0))
        for p in [*self.to_q.parameters(), *self.to_k.parameters(), *self.to_v.parameters(), *self.to_out.parameters()]:
            p.data = torch.randn(p.shape, generator=g) * 0.3


def test_id_attention_matches_direct_computation():
    g = torch.Generator().manual_seed(1)
    dim, ctx_dim, heads, tokens = 32, 24, 2, 4
    attn = Attn2(dim, ctx_dim, heads, g)
    id_k, id_v = torch.nn.Linear(ctx_dim, dim, bias=False), torch.nn.Linear(ctx_dim, dim, bias=False)
    id_k.weight.data, id_v.weight.data = torch.randn(dim, ctx_dim, generator=g), torch.randn(dim, ctx_dim, generator=g)
    layer = IDCrossAttention(attn, id_k, id_v, scale=0.7)
    x, context = torch.randn(5, 9, dim, generator=g), torch.randn(5, 1 + tokens, ctx_dim, generator=g)

    q = x @ attn.to_q.weight.T
    # one CLIP key: softmax is 1, so the image branch is to_v(clip) at every token
    h_img = (context[:, :1] @ attn.to_v.weight.T).expand(-1, 9, -1)

    def mh(q, k, v):
        out = []
        for hd in range(heads):
            s = slice(hd * dim // heads, (hd + 1) * dim // heads)
            w = (q[..., s] @ k[..., s].transpose(1, 2) / (dim // heads) ** 0.5).softmax(-1)
            out.append(w @ v[..., s])
        return torch.cat(out, -1)

    h_id = mh(q, context[:, 1:] @ id_k.weight.T, context[:, 1:] @ id_v.weight.T)
    mu, sd = h_img.mean((1, 2), keepdim=True), h_img.std((1, 2), keepdim=True)
    h_id = (h_id - h_id.mean((1, 2), keepdim=True)) * sd / (h_id.std((1, 2), keepdim=True) + 1e-5) + mu
    expected = (h_img + 0.7 * h_id) @ attn.to_out[0].weight.T + attn.to_out[0].bias
    assert torch.allclose(layer(x, context=context), expected, atol=1e-4)
    # without face tokens (a 1-token context) it is the plain cross-attention
    assert torch.allclose(layer(x, context=context[:, :1]), h_img @ attn.to_out[0].weight.T + attn.to_out[0].bias, atol=1e-5)


def test_pose_net_matches_direct_convolutions():
    g = torch.Generator().manual_seed(2)
    net = PoseNet(out_channels=40)
    for p in net.parameters():
        p.data = torch.randn(p.shape, generator=g) * 0.2
    pose = torch.rand(2, 3, 64, 48, generator=g) * 2 - 1
    sd = net.state_dict()
    h = pose
    for i, (k, s) in enumerate([(3, 1), (4, 2), (3, 1), (4, 2), (3, 1), (4, 2), (3, 1), (3, 1)]):
        h = F.silu(F.conv2d(h, sd[f"conv_layers.{2 * i}.weight"], sd[f"conv_layers.{2 * i}.bias"], stride=s, padding=1))
    expected = F.conv2d(h, sd["final_proj.weight"], sd["final_proj.bias"]) * sd["scale"]
    out = net(pose)
    assert out.shape == (2, 40, 8, 6)
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.allclose(net(pose.view(1, 2, 3, 64, 48)), out)   # (b, f, c, h, w) input is flattened


def test_face_encoder_matches_direct_computation():
    g = torch.Generator().manual_seed(3)
    enc = FaceEncoder(token_dim=128, id_dim=32, clip_dim=96, num_tokens=3, depth=2)
    for name, p in enc.named_parameters():
        p.data = torch.randn(p.shape, generator=g) * (0.1 if p.dim() > 1 else 0.5) + (1 if "norm" in name and "weight" in name else 0)
    sd = enc.state_dict()
    id_emb, clip = torch.randn(2, 32, generator=g) * 10, torch.randn(2, 1, 96, generator=g)

    def ln(x, prefix):
        return F.layer_norm(x, x.shape[-1:], sd[prefix + ".weight"], sd[prefix + ".bias"])

    lat = F.linear(F.gelu(F.linear(id_emb, sd["proj.0.weight"], sd["proj.0.bias"])), sd["proj.2.weight"], sd["proj.2.bias"])
    lat = ln(lat.view(2, 3, 128), "norm")
    ctx = F.linear(clip, sd["fusion_model.proj_in.weight"], sd["fusion_model.proj_in.bias"])
    for layer in range(2):
        p = f"fusion_model.layers.{layer}"
        c, l_ = ln(ctx, f"{p}.0.norm1"), ln(lat, f"{p}.0.norm2")
        q = l_ @ sd[f"{p}.0.to_q.weight"].T
        kv = torch.cat([c, l_], 1) @ sd[f"{p}.0.to_kv.weight"].T
        k, v = kv[..., :128], kv[..., 128:]
        heads = []
        for hd in range(2):       # 128 / 64 heads
            s = slice(hd * 64, (hd + 1) * 64)
            w = ((q[..., s] * 64 ** -0.25) @ (k[..., s] * 64 ** -0.25).transpose(1, 2)).softmax(-1)
            heads.append(w @ v[..., s])
        lat = torch.cat(heads, -1) @ sd[f"{p}.0.to_out.weight"].T + lat
        ff = F.gelu(ln(lat, f"{p}.1.0") @ sd[f"{p}.1.1.weight"].T) @ sd[f"{p}.1.3.weight"].T
        lat = ff + lat
    expected = ln(F.linear(lat, sd["fusion_model.proj_out.weight"], sd["fusion_model.proj_out.bias"]), "fusion_model.norm_out")
    out = enc(id_emb, clip)
    assert out.shape == (2, 3, 128)
    assert torch.allclose(out, expected, atol=1e-4)
