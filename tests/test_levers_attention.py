"""The ID adapter's attention is ComfyUI's: the `optimized_attention` ComfyUI was started with (or that a pack
swapped in), and `transformer_options["optimized_attention_override"]` when a node sets one. Checked by
recording which function the ID adapter's two attentions (CLIP token, face tokens) call."""
import pytest
import torch

from fixtures.official_reference import build_tiny_pipeline, relative_error

FRAMES, H, W = 2, 64, 128   # no self-attention and no temporal attention sees 4 tokens
FACE_TOKENS = 4   # tests/fixtures/official_weights.face_encoder


@pytest.fixture(scope="module")
def setup(pack, tmp_path_factory):
    return build_tiny_pipeline(pack, tmp_path_factory.mktemp("attention"), FRAMES, H, W)


def one_call(model, positive, negative, latent):
    import comfy.sample
    import comfy.samplers
    noise = torch.randn(latent["samples"].shape, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        return comfy.sample.sample_custom(model, noise, 2.0, comfy.samplers.sampler_object("euler"), torch.tensor([5.0, 0.0]),
                                          positive, negative, latent["samples"], disable_pbar=True, seed=0)


def id_adapter_layers(model):
    return sum(1 for p in model.object_patches.values() if hasattr(p, "id_to_k"))


def test_id_adapter_uses_the_backend_comfyui_runs(setup, monkeypatch):
    import comfy.ldm.modules.attention as attention
    model, positive, negative, latent, _ = setup
    before = one_call(model, positive, negative, latent)
    backend, seen = attention.optimized_attention, []

    def recording_backend(q, k, v, heads, *args, **kwargs):
        seen.append(k.shape[1])
        return backend(q, k, v, heads, *args, **kwargs)

    monkeypatch.setattr(attention, "optimized_attention", recording_backend)   # what a pack or a start flag selects
    after = one_call(model, positive, negative, latent)
    layers = id_adapter_layers(model)
    assert layers > 0
    # one model call (cond+uncond batched): every ID layer attends once over the face tokens
    assert seen.count(FACE_TOKENS) == layers, seen
    assert relative_error(after, before) == 0


def test_id_adapter_follows_the_attention_override(setup):
    model, positive, negative, latent, _ = setup
    before = one_call(model, positive, negative, latent)
    seen = []

    def override(func, q, k, v, heads, *args, **kwargs):
        seen.append((func.__name__, k.shape[1]))
        return func(q, k, v, heads, *args, **kwargs)

    m = model.clone()
    m.model_options["transformer_options"] = {**m.model_options.get("transformer_options", {}),
                                              "optimized_attention_override": override}
    after = one_call(m, positive, negative, latent)
    face = [name for name, tokens in seen if tokens == FACE_TOKENS]
    assert len(face) == id_adapter_layers(model), seen
    assert relative_error(after, before) == 0
