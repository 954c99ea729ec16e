"""The speed and memory levers on a StableAnimator MODEL, measured on the CPU at toy size (figures, no assertions).

    .host/venv/bin/python benchmarks/levers.py [--only fp8,compile,tiling,memory]

fp8      weight bytes of the UNet + ID adapter (and PoseNet) per loader dtype, and the output difference against
         fp32 and fp16 on the same small official-format weights: one guided UNet call (sigma 5, CFG 2) and a
         3-step windowed run (7 frames, windows of 4).
compile  core's TorchCompileModel (inductor) against eager: seconds per step of a 2-step run with ID adapter, pose
         and two windows (5 frames 64x64), after a first run that compiles; graphs compiled and recompiles.
tiling   Decode Video's tiled mode on the FULL-SIZE SVD temporal decoder (random weights, fp32): error against the
         whole-frame decode of the same clip, overall and on the seams, per tile/overlap.
memory   peak bytes of tensors alive while the full-size decoder decodes one clip (counted op by op with a
         TorchDispatchMode, the inference-time analogue of the saved-activation count of hjb_checkpointing.py),
         per pixel and frame at small sizes, extended to 512x512 and 576x1024 at chunk 1, 2, 4, 8 (fp16 halves it).
"""
import argparse
import sys
import time
import weakref
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "scripts")]


def rel(a, b):
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def setup():
    from comfy_host import import_comfy, import_pack
    import_comfy(cpu=True, sdpa=True)
    return import_pack("sa_pack")


def fp8(pack, folder):
    import torch
    import comfy.model_management as mm
    import comfy.sample
    import comfy.samplers
    from importlib import import_module
    from fixtures.official_reference import build_tiny_pipeline
    windows = import_module("sa_pack.nodes.context_windows")
    sampling = import_module("sa_pack.nodes.sampling")
    results = {}
    for name in ("fp32", "fp16", "bf16", "fp8_e4m3fn", "fp8_e5m2"):
        model, pos, neg, latent, _ = build_tiny_pipeline(pack, folder, 7, 64, 64, dtype=name)
        pose = model.get_additional_models()[0]
        noise = torch.randn(latent["samples"].shape, generator=torch.Generator().manual_seed(4))
        seen = []
        with torch.inference_mode():
            comfy.sample.sample_custom(model, noise, 2.0, comfy.samplers.sampler_object("euler"), torch.tensor([5.0, 0.0]),
                                       pos, neg, latent["samples"], disable_pbar=True, seed=0,
                                       callback=lambda s, x0, x, t: seen.append(x0.clone()))
            m = model.clone()
            windows.set_windows(m, 4, 1)
            run = sampling.run_sampler(m, pos, neg, latent, 3, 3, 2.0, 3.0, "euler", "karras", 1.0)["samples"]
        results[name] = dict(bytes=model.model_size(), pose=mm.module_size(pose.model), call=seen[0], run=run)
    print("fp8 storage (tiny official-format model; UNet + ID adapter as ComfyUI sizes the MODEL):")
    print(f"{'dtype':<12}{'MODEL MB':>10}{'vs fp32':>9}{'PoseNet MB':>12}{'call vs fp32':>14}{'call vs fp16':>14}"
          f"{'run vs fp32':>13}{'run vs fp16':>13}")
    base, half = results["fp32"], results["fp16"]
    for name, r in results.items():
        print(f"{name:<12}{r['bytes'] / 2**20:>10.2f}{r['bytes'] / base['bytes']:>9.3f}{r['pose'] / 2**20:>12.3f}"
              f"{rel(r['call'], base['call']):>14.2e}{rel(r['call'], half['call']):>14.2e}"
              f"{rel(r['run'], base['run']):>13.2e}{rel(r['run'], half['run']):>13.2e}")


def compile_time(pack, folder):
    import torch
    import torch._dynamo
    from torch._dynamo.utils import counters
    from importlib import import_module
    from comfy_extras.nodes_torch_compile import TorchCompileModel
    from fixtures.official_reference import build_tiny_pipeline
    windows = import_module("sa_pack.nodes.context_windows")
    sampling = import_module("sa_pack.nodes.sampling")
    model, pos, neg, latent, _ = build_tiny_pipeline(pack, folder, 5, 64, 64)
    model = model.clone()
    windows.set_windows(model, 4, 1)
    steps = 2

    def run(m, seed):
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = sampling.run_sampler(m, pos, neg, latent, seed, steps, 2.0, 3.0, "euler", "karras", 1.0)["samples"]
        return out, (time.perf_counter() - t0) / steps

    eager, _ = run(model, 3)
    _, eager_step = run(model, 4)
    torch._dynamo.reset()
    counters.clear()
    compiled_model = TorchCompileModel.execute(model, "inductor").result[0]
    compiled, first_step = run(compiled_model, 3)
    graphs = counters["stats"]["unique_graphs"]
    _, compiled_step = run(compiled_model, 4)
    recompiles = counters["stats"]["unique_graphs"] - graphs
    breaks = sum(counters["graph_break"].values())
    print(f"\ntorch.compile (inductor, CPU, 5 frames 64x64, windows of 4, {steps} steps, cond+uncond batched):")
    print(f"eager {eager_step:.2f} s/step; compiled {compiled_step:.2f} s/step (ratio {compiled_step / eager_step:.2f}); "
          f"first compiled run {first_step:.1f} s/step incl. compilation; {graphs} graphs, {breaks} graph breaks, "
          f"{recompiles} new graphs in the second run; output vs eager {rel(compiled, eager):.2e}")


def tiling(pack):
    import torch
    from importlib import import_module
    from fixtures.hjb_models import svd_vae
    vt = import_module("sa_pack.nodes.vae_tiling")
    vae = svd_vae(small=False, seed=1)
    frames, size = 4, 256
    latent = torch.randn(frames, 4, size // 8, size // 8, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        whole = vt.decode_video(vae, latent, frames)
    print(f"\nTiled decode, full-size SVD decoder (random weights, fp32), {frames} frames {size}x{size} in one clip:")
    print(f"{'tile/overlap px':<18}{'rel. error':>11}{'mean abs':>10}{'max abs':>10}{'seam mean abs':>15}")
    for tile, overlap in ((128, 32), (128, 64), (192, 64)):
        with torch.inference_mode():
            tiled = vt.decode_video(vae, latent, frames, tile, overlap)
        d = (tiled - whole).abs()
        step = tile - overlap
        seams = [x for x in range(step, size, step) if x < size]
        band = torch.zeros(size, dtype=torch.bool)
        for x in seams:
            band[max(0, x - 4):x + overlap + 4] = True
        seam = torch.cat([d[:, band].flatten(), d[:, :, band].flatten()]).mean().item()
        print(f"{f'{tile}/{overlap}':<18}{((tiled - whole).norm() / (whole - whole.mean()).norm()).item():>11.3f}"
              f"{d.mean().item():>10.4f}{d.max().item():>10.4f}{seam:>15.4f}")


class LiveBytes:
    """Peak bytes of tensor storages created while active and still referenced (op by op)."""

    def __init__(self):
        from torch.utils._python_dispatch import TorchDispatchMode
        outer = self

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                outer.track(out)
                return out
        self.mode, self.live, self.peak, self.refs, self.size = Mode(), 0, 0, {}, {}

    def track(self, out):
        import torch
        from torch.utils._pytree import tree_leaves
        for t in tree_leaves(out):
            if not isinstance(t, torch.Tensor):
                continue
            key = t.untyped_storage().data_ptr()
            if not key:
                continue
            if key not in self.refs:
                self.refs[key], self.size[key] = 0, t.untyped_storage().nbytes()
                self.live += self.size[key]
                self.peak = max(self.peak, self.live)
            self.refs[key] += 1
            weakref.finalize(t, self.release, key)

    def release(self, key):
        self.refs[key] -= 1
        if self.refs[key] == 0:
            self.live -= self.size.pop(key)
            del self.refs[key]


def decode_peak(vae, frames, size):
    import torch
    latent = torch.randn(frames, 4, size // 8, size // 8)
    meter = LiveBytes()
    with torch.inference_mode(), meter.mode:
        vae.first_stage_model.decode(latent)
    return meter.peak


def memory(pack):
    from fixtures.hjb_models import svd_vae
    vae = svd_vae(small=False, seed=1)
    print("\nDecode memory, full-size SVD temporal decoder, fp32, peak bytes of live tensors for one clip:")
    print(f"{'frames':<8}{'size':<10}{'peak MiB':>10}{'B/px/frame':>12}")
    per_px = {}
    for frames, size in ((1, 64), (1, 128), (2, 128), (4, 128), (8, 96)):
        peak = decode_peak(vae, frames, size)
        per_px[frames] = peak / (frames * size * size)
        print(f"{frames:<8}{f'{size}x{size}':<10}{peak / 2**20:>10.1f}{per_px[frames]:>12.0f}")
    figure = max(per_px.values())
    print(f"\nExtended with the largest per-pixel figure ({figure:.0f} B/px/frame), GB for one clip:")
    print(f"{'size':<12}" + "".join(f"{f'chunk {c} fp32':>14}{f'chunk {c} fp16':>14}" for c in (1, 2, 4, 8)))
    for h, w in ((512, 512), (576, 1024), (512, 512 // 2), (256, 256)):
        label = f"{w}x{h}" + (" (tile)" if (h, w) in ((512, 256), (256, 256)) else "")
        print(f"{label:<12}" + "".join(f"{figure * c * h * w / 1e9:>14.2f}{figure * c * h * w / 2e9:>14.2f}" for c in (1, 2, 4, 8)))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="fp8,compile,tiling,memory")
    parts = parser.parse_args().only.split(",")
    import tempfile
    pack = setup()
    folder = Path(tempfile.mkdtemp(prefix="sa_levers_"))
    if "fp8" in parts:
        fp8(pack, folder / "fp8")
    if "compile" in parts:
        compile_time(pack, folder / "compile")
    if "tiling" in parts:
        tiling(pack)
    if "memory" in parts:
        memory(pack)


if __name__ == "__main__":
    main()
