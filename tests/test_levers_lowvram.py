"""Small cards: what the pack adds to the MODEL (ID adapter layers, PoseNet, the HJB decoder copy and ArcFace) is
counted by ComfyUI's memory estimate and follows its partial loading.

The tiny budget is ComfyUI's own `--novram` state (model_management.vram_state = NO_VRAM: load_models_gpu loads
no weight up front and every layer casts its weights to the device when it runs). ComfyUI treats a CPU load device
as "no VRAM management" (load_models_gpu switches it off for `is_device_cpu`), so the test lets this CPU count as a
card by patching model_management.is_device_cpu for the run; everything else is ComfyUI's path unchanged. A run
under that budget must complete with the same output as the normal run (on a CPU the casts move nothing, so
equal to fp32 rounding of nothing: exactly)."""
import importlib

import pytest
import torch

from fixtures.hjb_models import centred_arcface, svd_vae
from fixtures.official_reference import build_tiny_pipeline

FRAMES, H, W = 3, 64, 64


class FaceEmbed:
    def __init__(self):
        self.embedding = torch.zeros(1, 512)
        self.boxes = torch.tensor([[20.0, 20.0, 60.0, 70.0]])
        self.found = torch.tensor([True])
        self.image_size = (96, 80)

    def __len__(self):
        return 1


@pytest.fixture(scope="module")
def setup(pack, tmp_path_factory):
    import comfy.model_management as mm
    import comfy.model_patcher
    hjb_nodes = importlib.import_module(pack.__name__ + ".nodes.hjb")
    hjb_core = importlib.import_module(pack.__name__ + ".stableanimator_core.sampling.hjb")
    folder = tmp_path_factory.mktemp("lowvram")
    model, positive, negative, latent, _ = build_tiny_pipeline(pack, folder, FRAMES, H, W)
    masks = torch.zeros(FRAMES, H, W)
    masks[:, 16:48, 20:44] = 1
    with torch.inference_mode():
        arcface = comfy.model_patcher.ModelPatcher(centred_arcface(), load_device=mm.get_torch_device(),
                                                   offload_device=mm.unet_offload_device())
        hjb = hjb_nodes.apply_hjb(model, svd_vae(small=True, seed=1), arcface,
                                  torch.rand(1, 96, 80, 3, generator=torch.Generator().manual_seed(5)), FaceEmbed(), masks,
                                  hjb_core.HJBSettings(start=0, end=0, iterations=1, context=2))
    return model, hjb, positive, negative, latent


def ksampler(model, positive, negative, latent):
    import nodes
    with torch.inference_mode():
        return nodes.common_ksampler(model, 0, 2, 3.0, "euler", "karras", positive, negative, latent)[0]["samples"]


def test_memory_estimate_counts_the_id_adapter(pack, setup):
    import comfy.model_management as mm
    model = setup[0]
    adapter = [p for p in model.object_patches.values() if hasattr(p, "id_to_k")]
    adapter_bytes = sum(mm.module_size(p.id_to_k) + mm.module_size(p.id_to_v) for p in adapter)
    assert adapter and adapter_bytes > 0
    assert model.model_size() == mm.module_size(model.model) + adapter_bytes
    assert model.clone().model_size() == model.model_size()
    # PoseNet (and the HJB networks) are additional models: load_models_gpu estimates and loads each of them
    assert any(p.model is not None and hasattr(p.model, "final_proj") for p in model.get_additional_models())


def test_a_run_under_comfyuis_novram_budget_completes_with_the_same_output(pack, setup, monkeypatch):
    import comfy.model_management as mm
    model, hjb, positive, negative, latent = setup
    mm.unload_all_models()
    want = ksampler(hjb, positive, negative, latent)

    seen = {}

    def probe(executor, x, *args, **kwargs):   # what ComfyUI did to the pack's layers, seen mid-run
        unet = hjb.model.diffusion_model
        ids = [m for m in unet.modules() if hasattr(m, "id_to_k")]
        seen["id layers cast"] = all(l.comfy_cast_weights for m in ids for l in (m.id_to_k, m.id_to_v))
        seen["id layers"] = len(ids)
        seen["pose cast"] = all(m.comfy_cast_weights for m in model.get_additional_models()[0].model.modules()
                                if hasattr(m, "comfy_cast_weights"))
        seen["unet lowvram"] = hjb.model.model_lowvram
        return executor(x, *args, **kwargs)

    import comfy.patcher_extension
    # on the HJB MODEL itself, not a clone: a clone deep-copies model_options and with them the HJB post-CFG
    # object, whose copy never gets its run state (HJB silently off in clones; reported)
    probed = hjb
    probed.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "test_probe", probe)
    loads = []
    real_load = mm.LoadedModel.model_load

    def recording_load(self, lowvram_model_memory=0, force_patch_weights=False):
        loads.append((type(self.model.model).__name__, lowvram_model_memory))
        return real_load(self, lowvram_model_memory, force_patch_weights)

    mm.unload_all_models()
    monkeypatch.setattr(mm, "is_device_cpu", lambda device: False)
    monkeypatch.setattr(mm, "vram_state", mm.VRAMState.NO_VRAM)
    monkeypatch.setattr(mm.LoadedModel, "model_load", recording_load)
    try:
        got = ksampler(probed, positive, negative, latent)
        networks = [p for p in probed.get_additional_models() if p is not None]
        lowvram_networks = [type(p.model).__name__ for p in networks if p.model.model_lowvram]
    finally:
        mm.unload_all_models()
        probed.remove_wrappers_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "test_probe")
    print("loads:", loads, "\nseen mid-run:", seen, "\nnetworks partially loaded:", lowvram_networks)
    assert loads and all(budget < 1 for _, budget in loads)                  # every model got the tiny budget
    assert seen == {"id layers cast": True, "id layers": 16, "pose cast": True, "unet lowvram": True}
    # PoseNet and the HJB decoder copy are built from ComfyUI's ops and stream layer by layer. ArcFace (IResNet) is
    # plain torch.nn: ComfyUI can only load it whole, and under this budget it is left on the offload device (on a
    # GPU with --novram the HJB step would then meet CPU weights). Known gap, reported; not hidden here.
    assert sorted(lowvram_networks) == ["PoseNet", "VideoDecoder"] and len(networks) == 3
    assert torch.equal(got, want)
