"""The ComfyUI internals of nodes/host_internals.py, checked on the running host (ComfyUI 0.3.75): each one the pack
reads is still there and behaves as the pack assumes; when one changes, these fail loudly (and the pack's
accessors raise an error that names the internal instead of running wrong)."""
import importlib

import pytest
import torch

from fixtures.hjb_models import svd_vae


@pytest.fixture(scope="module")
def internals(pack, comfy_inprocess):
    return importlib.import_module(pack.__name__ + ".nodes.host_internals")


def test_written_against_0_3_75(internals):
    assert internals.COMFYUI_VERSION == "0.3.75"


@pytest.mark.parametrize("small", [True, False])
def test_svd_decoder_and_its_plain_copy(internals, small):
    """The VAE's decoder, devices and dtype are where the pack reads them, and the decoder rebuilt from its own
    attributes holds exactly its weights (strict load) and decodes the same."""
    from comfy.ldm.modules.temporal_ae import VideoDecoder
    vae = svd_vae(small=small, seed=2)
    decoder, load_device, offload, dtype = internals.svd_decoder(vae)
    assert isinstance(decoder, VideoDecoder) and dtype == vae.vae_dtype
    assert load_device == torch.device(vae.device) and offload == vae.patcher.offload_device
    copy = internals.plain_video_decoder(decoder, torch.device("cpu"), torch.float32)
    assert type(copy) is VideoDecoder and copy is not decoder
    assert copy.state_dict().keys() == decoder.state_dict().keys()
    z = torch.randn(2, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(copy(z), decoder(z), rtol=0, atol=1e-6)


def test_the_copy_carries_no_runtime_state_of_comfy_ops(internals):
    """ComfyUI's low-VRAM loading sets per-layer state on comfy.ops layers (cast flags, weight functions); the
    copy is built from the weights alone, so such state on the VAE's decoder does not reach it."""
    vae = svd_vae(small=True, seed=2)
    decoder = vae.first_stage_model.decoder
    z = torch.randn(2, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = decoder(z)
    decoder.conv_in.comfy_cast_weights = True
    decoder.conv_in.weight_function = [lambda w: w * 0]     # a patch that would zero the layer if it were carried
    try:
        copy = internals.plain_video_decoder(decoder, torch.device("cpu"), torch.float32)
    finally:
        del decoder.conv_in.comfy_cast_weights, decoder.conv_in.weight_function
    with torch.no_grad():
        torch.testing.assert_close(copy(z), want, rtol=0, atol=1e-6)


def test_a_vae_without_the_temporal_decoder_is_refused(internals):
    class NotSVD:
        first_stage_model = torch.nn.Module()
    with pytest.raises(Exception, match="needs SVD's temporal VAE"):
        internals.svd_decoder(NotSVD())


def test_0_3_75_still_has_the_context_window_bugs_the_pack_works_around(internals):
    """The probes see the two bugs on this host, so the workarounds run here; on a fixed host they see the fix
    (tests/test_sampler.py simulates one) and core's code runs."""
    assert internals.core_set_step_handles_video() is False
    assert internals.core_slices_frame_conds() is False


def test_context_window_internals(internals):
    import comfy.conds
    handler = internals._probe_handler()
    assert hasattr(handler, "_step")
    internals.record_step(handler, 3)
    assert handler._step == 3
    cond = comfy.conds.CONDRegular(torch.ones(2))
    copy = internals.cond_with(cond, torch.zeros(3))
    assert type(copy) is comfy.conds.CONDRegular and torch.equal(copy.cond, torch.zeros(3))
    window = internals._probe_window([0, 2], 3)
    assert window.get_tensor(torch.arange(3)).tolist() == [0, 2]


def test_guider_internals_fail_loudly(internals):
    """The real path (an OUTER_SAMPLE wrapper inside a sampler) is exercised by the run-check tests of
    tests/test_sampler.py; here the accessor itself, on a CFGGuider and on something else."""
    import comfy.model_patcher
    import comfy.samplers
    holder = comfy.model_patcher.ModelPatcher(torch.nn.Linear(1, 1), torch.device("cpu"), torch.device("cpu"))

    class Executor:
        class_obj = comfy.samplers.CFGGuider(holder)
    Executor.class_obj.conds = {"positive": []}    # CFGGuider.outer_sample sets it for the run
    assert internals.guider_run_parts(Executor()) == (holder, Executor.class_obj.model_options, {"positive": []})

    class Changed:
        class_obj = object()
    with pytest.raises(Exception, match="changed an internal StableAnimator relies on.*class_obj"):
        internals.guider_run_parts(Changed())


def test_decoder_block_layout(internals):
    vae = svd_vae(small=True, seed=2)
    copy = internals.plain_video_decoder(vae.first_stage_model.decoder, torch.device("cpu"), torch.float32)
    from comfy.ldm.modules.diffusionmodules.model import AttnBlock, Upsample
    from comfy.ldm.modules.temporal_ae import VideoResBlock
    wrapped = []

    def wrap(block):
        wrapped.append(VideoResBlock if isinstance(block, VideoResBlock) else AttnBlock if isinstance(block, AttnBlock)
                       else Upsample if isinstance(block, Upsample) else type(block))
        return block
    internals.wrap_decoder_blocks(copy, wrap)
    levels = len(copy.up)
    assert wrapped[:3] == [VideoResBlock, AttnBlock, VideoResBlock]
    assert wrapped.count(Upsample) == levels - 1 and wrapped.count(VideoResBlock) == 2 + levels * 2
    assert len(wrapped) == 3 + levels * 2 + levels - 1
    with pytest.raises(Exception, match="mid / up block layout"):
        internals.wrap_decoder_blocks(torch.nn.Module(), wrap)


def test_sampler_internals(internals):
    """is_euler reads KSAMPLER.sampler_function; run_sigmas is exercised in real runs by the HJB tests (HJB finds
    its step from it: without it the pack would not match the independent HJB)."""
    import comfy.samplers
    assert internals.is_euler(comfy.samplers.sampler_object("euler"))
    assert not internals.is_euler(comfy.samplers.sampler_object("heun"))
    sigmas = torch.tensor([1.0, 0.0])
    assert internals.run_sigmas({"transformer_options": {"sample_sigmas": sigmas}}) is sigmas
    assert internals.run_sigmas({}) is None


def test_svd_model_from_a_unet_state_dict(internals):
    """The loader's path: ComfyUI detects the SVD config from the converted official UNet and builds its SVD model
    with exactly those tensors; a UNet without temporal layers is not taken for SVD."""
    import comfy.model_base
    from fixtures.official_weights import adapter_tensors, diffusers_unet, official_unet_state_dict
    from stableanimator_core.model.unet_keys import split_official_unet
    unet = diffusers_unet(seed=0)
    unet_sd, _ = split_official_unet(official_unet_state_dict(unet, adapter_tensors(unet)))
    config = internals.svd_unet_config(unet_sd)
    assert config is not None and config["use_temporal_attention"]
    model, load_device, dtype = internals.svd_model(unet_sd, config, torch.float32, 1000)
    assert isinstance(model, comfy.model_base.SVD_img2vid) and dtype == torch.float32
    assert load_device == torch.device("cpu")
    layout = {k[len("diffusion_model."):]: tuple(v.shape) for k, v in model.state_dict().items()
              if k.startswith("diffusion_model.")}
    assert layout == {k: tuple(v.shape) for k, v in unet_sd.items()}
    spatial_only = {k: v for k, v in unet_sd.items() if "time_stack" not in k and "time_mixer" not in k}
    assert internals.svd_unet_config(spatial_only) is None


def test_svd_model_fails_loudly_when_core_moves(internals, monkeypatch):
    import comfy.model_management
    monkeypatch.delattr(comfy.model_management, "unet_inital_load_device")
    with pytest.raises(Exception, match="changed an internal StableAnimator relies on.*unet_inital_load_device"):
        internals.svd_model({}, {}, torch.float32, 0)


def test_cross_attention_parts_and_the_attention_looked_up_at_call_time(internals, monkeypatch):
    import comfy.ldm.modules.attention as attention
    internals.cross_attention_parts(attention.CrossAttention(32, context_dim=16, heads=2, dim_head=16))
    with pytest.raises(Exception, match="changed an internal StableAnimator relies on.*has no to_q, to_k, to_v"):
        internals.cross_attention_parts(torch.nn.Linear(2, 2))
    fn, seen = internals.host_attention(None), []
    monkeypatch.setattr(attention, "optimized_attention", lambda q, k, v, heads, **kw: seen.append(heads) or q)
    q = torch.ones(1, 3, 4)
    assert fn(q, q, q, 2, {}) is q and seen == [2]


def test_vae_clip_decoder_is_vae_decode_of_the_clip(internals):
    """Decode Video's tiles decode a clip through these parts; untiled, they must give what VAE.decode gives."""
    vae = svd_vae(small=True, seed=3)
    z = torch.randn(3, 4, 4, 4, generator=torch.Generator().manual_seed(1))
    parts = internals.vae_clip_decoder(vae)
    parts.load(parts.memory_per_frame((3, 4, 4, 4)) * 3)
    with torch.inference_mode():
        want = vae.decode(z)
        got = parts.to_images(parts.decode(z))
    assert got.shape == want.reshape(-1, *want.shape[-3:]).shape
    torch.testing.assert_close(got, want.reshape(got.shape), rtol=0, atol=1e-5)

    class Changed:
        first_stage_model = vae.first_stage_model
    with pytest.raises(Exception, match="changed an internal StableAnimator relies on.*vae_dtype"):
        internals.vae_clip_decoder(Changed())


def test_model_size_and_compute_dtype(internals, monkeypatch):
    """The ID adapter's bytes reach ComfyUI's memory estimate through model_size()'s cache; the compute dtype of
    fp8 storage is the model's cast dtype. A ModelPatcher that stops using its cache, or a BaseModel without
    manual_cast_dtype, is named instead of silently mis-sized."""
    import comfy.model_management
    import comfy.model_patcher
    net = torch.nn.Linear(4, 4)
    patcher = comfy.model_patcher.ModelPatcher(net, load_device=torch.device("cpu"), offload_device=torch.device("cpu"))
    before = patcher.model_size()
    assert before == comfy.model_management.module_size(net)
    internals.add_model_bytes(patcher, 1000)
    assert patcher.model_size() == before + 1000
    assert patcher.clone().model_size() == before + 1000   # clones (MODEL patches downstream) keep the count
    monkeypatch.setattr(comfy.model_patcher.ModelPatcher, "model_size",
                        lambda self: comfy.model_management.module_size(self.model))
    with pytest.raises(Exception, match="changed an internal StableAnimator relies on.*model_size"):
        internals.add_model_bytes(comfy.model_patcher.ModelPatcher(net, load_device=torch.device("cpu"),
                                                                   offload_device=torch.device("cpu")), 10)

    class Model(torch.nn.Module):
        manual_cast_dtype = torch.float16

        def get_dtype(self):
            return torch.float8_e4m3fn

    class Holder:
        model = Model()
    assert internals.compute_dtype(Holder()) == torch.float16
    Holder.model.manual_cast_dtype = None
    assert internals.compute_dtype(Holder()) == torch.float8_e4m3fn
    Holder.model = torch.nn.Linear(1, 1)
    with pytest.raises(Exception, match="changed an internal StableAnimator relies on.*manual_cast_dtype"):
        internals.compute_dtype(Holder())
