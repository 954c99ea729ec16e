"""Apply Animator's id_strength and pose_strength at values other than 1: the patched MODEL's prediction equals the
official-semantics reference (diffusers, same tiny weights) with the face branch scaled by id_strength and the pose
features scaled by pose_strength (removed at 0)."""
import pytest
import torch

from fixtures.official_reference import OfficialIDProcessor, build_tiny_pipeline, reference_x0, relative_error

FRAMES, H, W = 2, 64, 64
SIGMA = 5.0


@pytest.fixture(scope="module")
def setup(pack, tmp_path_factory):
    from importlib import import_module
    folder = tmp_path_factory.mktemp("strengths")
    _, positive, negative, latent, ref = build_tiny_pipeline(pack, folder, FRAMES, H, W)
    loading = import_module(pack.__name__ + ".nodes.loading")
    patching = import_module(pack.__name__ + ".nodes.patching")
    model, animator = loading.load_animator(str(folder / "unet.pth"), str(folder / "pose_net.pth"),
                                            str(folder / "face_encoder.pth"), "fp32")

    def applied(id_strength, pose_strength):
        return patching.apply_stableanimator(model, animator, id_strength=id_strength, pose_strength=pose_strength)
    return applied, positive, negative, latent, ref


def pack_cond_x0(model, positive, negative, latent, noise):
    """The cond branch's x0 prediction (cfg 1) of one Euler step through ComfyUI's sampler, from the callback."""
    import comfy.sample
    import comfy.samplers
    seen = []
    with torch.inference_mode():
        comfy.sample.sample_custom(model, noise, 1.0, comfy.samplers.sampler_object("euler"), torch.tensor([SIGMA, 0.0]),
                                   positive, negative, latent["samples"], disable_pbar=True, seed=0,
                                   callback=lambda step, x0, x, total: seen.append(x0.clone()))
    return seen[0]


def official_cond_x0(ref, x, id_strength, pose_strength):
    unet = ref["unet"]
    official = unet.attn_processors
    scaled = {name: OfficialIDProcessor(p.id_to_k, p.id_to_v, id_strength) if isinstance(p, OfficialIDProcessor) else p
              for name, p in official.items()}
    unet.set_attn_processor(scaled)
    try:
        pose = ref["pose_features"] * pose_strength if pose_strength != 0 else None
        with torch.no_grad():
            return reference_x0(unet, x, SIGMA, ref["ref_latent"], ref["cond_context"], ref["time_ids"], pose)
    finally:
        unet.set_attn_processor(official)


@pytest.mark.parametrize("id_strength,pose_strength", [(0.5, 1.0), (0.0, 1.0), (1.0, 0.5), (1.0, 0.0), (0.5, 0.0)])
def test_strengths_scale_the_face_branch_and_the_pose(setup, id_strength, pose_strength):
    applied, positive, negative, latent, ref = setup
    noise = torch.randn(latent["samples"].shape, generator=torch.Generator().manual_seed(4))
    x = noise * SIGMA
    got = pack_cond_x0(applied(id_strength, pose_strength), positive, negative, latent, noise)
    want = official_cond_x0(ref, x, id_strength, pose_strength)
    at_full = official_cond_x0(ref, x, 1.0, 1.0)
    print(f"id {id_strength} pose {pose_strength}: pack vs reference {relative_error(got, want):.2e}, "
          f"reference vs strengths 1: {relative_error(want, at_full):.2e}")
    assert relative_error(want, at_full) > 1e-3      # the strengths change the reference's prediction
    assert relative_error(got, want) <= 1e-5
