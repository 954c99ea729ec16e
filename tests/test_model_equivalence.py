"""The ComfyUI-patched model against an independent reference with the official semantics, built here on
diffusers' UNetSpatioTemporalConditionModel from the same small random weights."""
import math

import pytest
import torch
import torch.nn.functional as F

from fixtures.official_weights import write_official_set

SIGMAS = [5.0, 700.0]
FRAMES, H, W = 3, 64, 64      # latent 8x8
NUM_FACE_TOKENS = 4


def relative_error(a, b):
    return ((a - b).norm() / b.norm()).item()


def heads_attention(q, k, v, heads):
    b, n, c = q.shape
    q, k, v = (t.reshape(b, -1, heads, c // heads).transpose(1, 2) for t in (q, k, v))
    return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, c)


class OfficialIDProcessor:
    """Spatial attn2 of the official model: CLIP branch + face branch re-normalised to the CLIP branch's
    per-frame mean and unbiased std over tokens and channels, added before to_out."""

    def __init__(self, id_to_k, id_to_v):
        self.id_to_k, self.id_to_v = id_to_k, id_to_v

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kw):
        end = encoder_hidden_states.shape[1] - NUM_FACE_TOKENS
        image, face = encoder_hidden_states[:, :end], encoder_hidden_states[:, end:]
        q = attn.to_q(hidden_states)
        h = heads_attention(q, attn.to_k(image), attn.to_v(image), attn.heads)
        h_id = heads_attention(q, face @ self.id_to_k.T, face @ self.id_to_v.T, attn.heads)
        mu, sd = h.mean(dim=(1, 2), keepdim=True), h.std(dim=(1, 2), keepdim=True)
        mu_id, sd_id = h_id.mean(dim=(1, 2), keepdim=True), h_id.std(dim=(1, 2), keepdim=True)
        h = h + (h_id - mu_id) * sd / (sd_id + 1e-5) + mu
        return attn.to_out[1](attn.to_out[0](h))


class ClipTokenOnlyProcessor:
    """Temporal attn2 of the official model sees the CLIP token only."""

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kw):
        context = encoder_hidden_states[:, : encoder_hidden_states.shape[1] - NUM_FACE_TOKENS]
        h = heads_attention(attn.to_q(hidden_states), attn.to_k(context), attn.to_v(context), attn.heads)
        return attn.to_out[1](attn.to_out[0](h))


class PlainProcessor:
    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kw):
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        h = heads_attention(attn.to_q(hidden_states), attn.to_k(context), attn.to_v(context), attn.heads)
        return attn.to_out[1](attn.to_out[0](h))


def official_reference(unet, adapter):
    processors = {}
    for name in unet.attn_processors:
        base = name[: -len(".processor")]
        if "temporal_transformer_blocks" in name:
            processors[name] = ClipTokenOnlyProcessor() if name.endswith("attn2.processor") else PlainProcessor()
        elif name.endswith("attn2.processor"):
            processors[name] = OfficialIDProcessor(adapter[base + ".processor.id_to_k.weight"],
                                                   adapter[base + ".processor.id_to_v.weight"])
        else:
            processors[name] = PlainProcessor()
    unet.set_attn_processor(processors)
    return unet


def reference_x0(unet, x, sigma, ref_latent, context, time_ids, pose_features):
    """One official UNet call in EDM form: v-prediction with c_in = 1/sqrt(s^2+1), c_noise = ln(s)/4."""
    hook = None
    if pose_features is not None:  # official: sample = conv_in(sample) + pose_latents
        hook = unet.conv_in.register_forward_hook(lambda m, i, out: out + pose_features)
    try:
        scaled = x / math.sqrt(sigma ** 2 + 1)
        sample = torch.cat([scaled, ref_latent.expand(x.shape[0], -1, -1, -1)], dim=1).unsqueeze(0)
        t = torch.tensor([0.25 * math.log(sigma)])
        v = unet(sample, t, context, time_ids).sample[0]
    finally:
        if hook:
            hook.remove()
    return x / (sigma ** 2 + 1) - sigma / math.sqrt(sigma ** 2 + 1) * v


class FakeClipVision:
    def __init__(self, embeds):
        self.embeds = embeds

    def encode_image(self, image, crop=True):
        assert image.shape[1:] == (224, 224, 3) and not crop
        return {"image_embeds": self.embeds}


class FakeVAE:
    def __init__(self, latent):
        self.latent = latent

    def encode(self, pixels):
        assert pixels.shape[1:] == (H, W, 3)
        return self.latent


class FakeFaceEmbed:
    def __init__(self, embedding):
        self.embedding = embedding


@pytest.fixture(scope="module")
def setup(pack, tmp_path_factory):
    from importlib import import_module
    loading = import_module(pack.__name__ + ".nodes.loading")
    patching = import_module(pack.__name__ + ".nodes.patching")
    conditioning = import_module(pack.__name__ + ".nodes.conditioning")
    folder = tmp_path_factory.mktemp("official")
    torch.manual_seed(0)
    unet, adapter, pose_net, face_encoder = write_official_set(folder)
    model, animator = loading.load_animator(str(folder / "unet.pth"), str(folder / "pose_net.pth"),
                                            str(folder / "face_encoder.pth"), "fp32")
    patched = patching.apply_stableanimator(model, animator)

    g = torch.Generator().manual_seed(1)
    clip_embeds = torch.randn(1, 1024, generator=g)
    id_embedding = torch.randn(1, 512, generator=g) * 10
    ref_latent = torch.randn(1, 4, H // 8, W // 8, generator=g)
    poses = torch.rand(FRAMES, H, W, 3, generator=g)
    reference = torch.rand(1, 80, 60, 3, generator=g)
    aug = 0.02
    positive, negative, latent = conditioning.build_conditioning(
        FakeClipVision(clip_embeds), FakeVAE(ref_latent), animator, FakeFaceEmbed(id_embedding), reference, poses,
        W, H, 0, 7, 127, aug, 0)

    with torch.no_grad():
        tokens = face_encoder(id_embedding, clip_embeds.unsqueeze(1))
        features = pose_net(poses.movedim(-1, 1) * 2 - 1)
    ref = dict(unet=official_reference(unet, adapter), ref_latent=ref_latent,
               cond_context=torch.cat([clip_embeds.unsqueeze(1), tokens], 1),
               time_ids=torch.tensor([[6.0, 127.0, aug]]), pose_features=features)
    return patched, positive, negative, latent, ref


def comfy_x0(model, positive, negative, latent, noise, sigma, cfg):
    """The guided x0 prediction of one step through ComfyUI's own sampler, read from the step callback."""
    import comfy.sample
    import comfy.samplers
    seen = []
    comfy.sample.sample_custom(model, noise, cfg, comfy.samplers.sampler_object("euler"), torch.tensor([sigma, 0.0]),
                               positive, negative, latent["samples"], disable_pbar=True, seed=0,
                               callback=lambda step, x0, x, total: seen.append(x0.clone()))
    assert len(seen) == 1
    return seen[0]


@pytest.mark.parametrize("sigma", SIGMAS)
def test_one_model_call_matches_official_semantics(setup, sigma):
    model, positive, negative, latent, ref = setup
    noise = torch.randn(latent["samples"].shape, generator=torch.Generator().manual_seed(2))
    x = noise * sigma
    with torch.no_grad():
        cond = reference_x0(ref["unet"], x, sigma, ref["ref_latent"], ref["cond_context"], ref["time_ids"], ref["pose_features"])
        uncond = reference_x0(ref["unet"], x, sigma, torch.zeros_like(ref["ref_latent"]),
                              torch.zeros_like(ref["cond_context"]), ref["time_ids"], None)
    got_cond = comfy_x0(model, positive, negative, latent, noise, sigma, 1.0)
    got_uncond = comfy_x0(model, negative, positive, latent, noise, sigma, 1.0)
    assert relative_error(got_cond, cond) <= 1e-5
    assert relative_error(got_uncond, uncond) <= 1e-5
    assert relative_error(cond, uncond) > 1e-2          # the branches really differ

    # Batched cond+uncond with CFG 3 equals CFG on the official separate calls.
    got_cfg = comfy_x0(model, positive, negative, latent, noise, sigma, 3.0)
    assert relative_error(got_cfg, uncond + 3.0 * (cond - uncond)) <= 1e-5


def test_face_tokens_and_pose_change_the_output(setup):
    """Each StableAnimator part has an effect: the check above would be blind to a part that did nothing."""
    model, positive, negative, latent, ref = setup
    sigma = SIGMAS[0]
    noise = torch.randn(latent["samples"].shape, generator=torch.Generator().manual_seed(3))
    x = noise * sigma
    with torch.no_grad():
        full = reference_x0(ref["unet"], x, sigma, ref["ref_latent"], ref["cond_context"], ref["time_ids"], ref["pose_features"])
        no_pose = reference_x0(ref["unet"], x, sigma, ref["ref_latent"], ref["cond_context"], ref["time_ids"], None)
        no_face = ref["cond_context"].clone()
        no_face[:, 1:] = 0
        without_face = reference_x0(ref["unet"], x, sigma, ref["ref_latent"], no_face, ref["time_ids"], ref["pose_features"])
    assert relative_error(no_pose, full) > 1e-3 and relative_error(without_face, full) > 1e-3
    assert relative_error(comfy_x0(model, positive, negative, latent, noise, sigma, 1.0), full) <= 1e-5

