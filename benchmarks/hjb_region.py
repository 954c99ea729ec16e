"""HJB with region decoding against the official full-frame decode, from the same noise.

    .host/venv/bin/python benchmarks/hjb_region.py

Small official-format StableAnimator weights (the test fixtures' tiny UNet, PoseNet and face encoder), the narrow
SVD temporal decoder and a tiny ArcFace with random weights; core KSampler (euler, karras) with the HJB MODEL.
For each case it samples without HJB, with HJB decoding only the face regions (plus `context` latent cells)
and with HJB decoding whole frames (full_frame, the official behaviour), and prints
- the relative difference of the final latents, region against full frame (|a - b| / |b|), and of either
  against no HJB (how much HJB moved the result at all);
- the face CSIM (cosine of ArcFace on the decoded final frames' face crops to the reference identity) without
  HJB, and its gain with region and with full-frame decoding.
Random weights: the figures say how far region decoding departs from full frames, not what quality real weights
reach. No assertions.
"""
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "scripts")]

CASES = [  # (size, frames, context cells, steps, refined steps)
    (128, 4, 2, 4, (0, 2)),
    (256, 4, 8, 4, (0, 2)),
]


class Embed:
    def __init__(self, box, size):
        import torch
        self.embedding = torch.zeros(1, 512)
        self.boxes, self.found, self.image_size = torch.tensor([box], dtype=torch.float32), torch.tensor([True]), size

    def __len__(self):
        return 1


def main():
    import torch
    from comfy_host import import_comfy, import_pack
    import_comfy(cpu=True, sdpa=True)
    pack = import_pack("sa_pack")
    import comfy.model_management as mm
    import comfy.model_patcher
    import nodes
    from importlib import import_module
    from fixtures.hjb_models import centred_arcface, svd_vae
    from fixtures.official_reference import build_tiny_pipeline
    hjb_nodes = import_module("sa_pack.nodes.hjb")
    hjb_core = import_module("sa_pack.stableanimator_core.sampling.hjb")

    vae = svd_vae(small=True, seed=1)
    with torch.inference_mode():
        arcface = comfy.model_patcher.ModelPatcher(centred_arcface(), load_device=mm.get_torch_device(),
                                                   offload_device=mm.unet_offload_device())
    reference = torch.rand(1, 96, 80, 3, generator=torch.Generator().manual_seed(5))
    face = Embed([20, 20, 60, 70], (96, 80))
    ref_emb = hjb_nodes.reference_identity_from_inputs(arcface.model, reference, face)
    decode = hjb_nodes.decode_function(hjb_nodes.decoder_copy(vae, checkpoint_blocks=False))

    print(f"{'case':<28}{'region vs full':>15}{'region vs none':>15}{'full vs none':>13}"
          f"{'CSIM none':>11}{'gain region':>12}{'gain full':>10}")
    for size, frames, context, steps, (start, end) in CASES:
        model, positive, negative, latent, _ = build_tiny_pipeline(pack, Path(tempfile.mkdtemp()), frames, size, size)
        masks = torch.zeros(frames, size, size)
        masks[:, size // 8: size * 3 // 8, size * 3 // 8: size * 5 // 8] = 1   # a face a quarter of the frame high
        boxes = hjb_nodes.boxes_for_run(masks, frames, size, size)
        results = {}
        for name in ("none", "region", "full"):
            m = model
            if name != "none":
                settings = hjb_core.HJBSettings(start=start, end=end, context=context, full_frame=(name == "full"))
                with torch.inference_mode():
                    m = hjb_nodes.apply_hjb(model, vae, arcface, reference, face, masks, settings)
            with torch.inference_mode():
                results[name] = nodes.common_ksampler(m, 0, steps, 3.0, "euler", "karras", positive, negative, latent)[0]["samples"]
        csim = {}
        for name, z in results.items():
            with torch.no_grad():
                pixels = ((decode(z.float()) + 1) / 2).clamp(0, 1) * 2 - 1
                csim[name] = float(1 - hjb_core._identity_terms(arcface.model, pixels, boxes, ref_emb).mean())

        def rel(a, b):
            return float((results[a] - results[b]).norm() / results[b].norm())

        case = f"{size}x{size} {frames}f ctx {context} steps {start}-{end}/{steps}"
        print(f"{case:<28}{rel('region', 'full'):>15.2e}{rel('region', 'none'):>15.2e}{rel('full', 'none'):>13.2e}"
              f"{csim['none']:>11.4f}{csim['region'] - csim['none']:>+12.4f}{csim['full'] - csim['none']:>+10.4f}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
