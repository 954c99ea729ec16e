"""Speed and memory of StableAnimator sampling: our nodes' path against a baseline with the official semantics.

    .host/venv/bin/python benchmarks/sampling.py            # reduced size (CPU smoke run, what CI runs)
    .host/venv/bin/python benchmarks/sampling.py --full     # SVD-xt at full size (needs a GPU)

Levers (ours only, same weights, same run): fp16 (the --full default dtype), fp8 (loader fp8_e4m3fn, computed
in fp16), compiled (core's TorchCompileModel, inductor; the first run compiles, the second is timed), tiled
(Decode Video with 256 px tiles, 64 px overlap, against the untiled decode of every other row). Each row also
decodes its latent with Decode Video (chunk 4) and reports that time and peak separately. --full runs every lever
on every case; the CPU smoke run (no arguments, what CI runs) runs fp8 and tiled on its first case only
(inductor compilation takes minutes on two CPU cores; tests/test_levers_compile.py covers compile in CI).

Ours: official-format weights written to disk, loaded by the pack's loader, patched by StableAnimator Apply,
sampled by the pack's sampler (core sampling with the pack's context windows: batched cond+uncond per window,
per-frame CFG, Euler, HJB as a post-CFG patch with region decoding). Baseline: the official semantics on
diffusers' UNetSpatioTemporalConditionModel (the independent reference of the equivalence tests): two separate cond/uncond calls per window, v fused, CFG,
Euler, and HJB decoding every frame in full with all chunk graphs kept, as the official pipeline does.
Each measurement runs in its own process; peak memory is torch's peak allocated on a GPU and the process's
peak RSS on the CPU. Random weights; figures only, no assertions.
"""
import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "scripts")]

SMOKE = dict(unet=dict(), size=[(64, 64)], frames=[16, 64], steps=3, hjb_steps=(0, 1), dtype="fp32", vae="small", arcface="tiny")
FULL = dict(unet=None, size=[(512, 512), (576, 1024)], frames=[16, 64], steps=25, hjb_steps=(0, 20), dtype="fp16",
            vae="full", arcface="full")


def import_pack(sdpa=False):
    import torch
    from comfy_host import import_comfy, import_pack as load_pack
    import_comfy(cpu=not torch.cuda.is_available(), sdpa=sdpa)
    return load_pack("sa_pack")


def weights(folder: Path, full: bool):
    """Official-format files, written once per size."""
    import torch
    from fixtures import official_weights as ow
    if (folder / "unet.pth").exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    if full:
        from diffusers import UNetSpatioTemporalConditionModel
        unet = UNetSpatioTemporalConditionModel()
        torch.save({**unet.state_dict(), **ow.adapter_tensors(unet)}, folder / "unet.pth")
        torch.save(ow.pose_net(out_channels=320).state_dict(), folder / "pose_net.pth")
        torch.save(ow.face_encoder(depth=4).state_dict(), folder / "face_encoder.pth")
    else:
        ow.write_official_set(folder)


def make_vae(kind):
    from fixtures.hjb_models import svd_vae
    return svd_vae(small=(kind == "small"), seed=1)


def make_arcface(kind, device):
    if kind == "tiny":
        from fixtures.hjb_models import centred_arcface
        return centred_arcface().to(device)
    from stableanimator_core.face.arcface import IResNet, IResNetConfig
    return IResNet(IResNetConfig()).eval().requires_grad_(False).to(device)


def face_masks(frames, height, width):
    import torch
    masks = torch.zeros(frames, height, width)
    masks[:, height // 8: height // 8 + height // 4, width * 3 // 8: width * 5 // 8] = 1   # a face a quarter high
    return masks


class Meter:
    def __init__(self, device):
        import torch
        self.torch, self.cuda = torch, device.type == "cuda"
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()

    def sync(self):
        if self.cuda:
            self.torch.cuda.synchronize()

    def peak_gb(self):
        if self.cuda:
            return self.torch.cuda.max_memory_allocated() / 2**30
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def run_ours(pack, folder, frames, width, height, steps, hjb_steps, cfg, dtype, device, lever="none"):
    import torch
    from importlib import import_module
    from fixtures.official_reference import FakeClipVision, FakeFaceEmbed, FakeVAE
    loading, patching = import_module("sa_pack.nodes.loading"), import_module("sa_pack.nodes.patching")
    conditioning, sampling = import_module("sa_pack.nodes.conditioning"), import_module("sa_pack.nodes.sampling")
    hjb_nodes, hjb_core = import_module("sa_pack.nodes.hjb"), import_module("sa_pack.stableanimator_core.sampling.hjb")
    vae_tiling = import_module("sa_pack.nodes.vae_tiling")
    if lever == "fp8":
        dtype = "fp8_e4m3fn"
    model, animator = loading.load_animator(str(folder / "unet.pth"), str(folder / "pose_net.pth"), str(folder / "face_encoder.pth"), dtype)
    model = patching.apply_stableanimator(model, animator)
    g = torch.Generator().manual_seed(0)
    positive, negative, latent = conditioning.build_conditioning(
        FakeClipVision(torch.randn(1, 1024, generator=g)), FakeVAE(torch.randn(1, 4, height // 8, width // 8, generator=g), height, width),
        animator, FakeFaceEmbed(torch.randn(1, 512, generator=g)), torch.rand(1, height, width, 3, generator=g),
        torch.rand(frames, height, width, 3, generator=g), width, height, 0, 7, 127, 0.02, 0)
    if hjb_steps:
        import comfy.model_patcher
        import comfy.model_management as mm
        arc = comfy.model_patcher.ModelPatcher(make_arcface(cfg["arcface"], torch.device("cpu")), load_device=mm.get_torch_device(),
                                               offload_device=mm.unet_offload_device())
        embed = FakeFaceEmbed(torch.zeros(1, 512))
        embed.boxes, embed.found, embed.image_size = torch.tensor([[width * .375, height * .125, width * .625, height * .375]]), torch.tensor([True]), (height, width)
        embed.__class__ = type("Embed", (FakeFaceEmbed,), {"__len__": lambda self: 1})
        with torch.inference_mode():
            model = hjb_nodes.apply_hjb(model, make_vae(cfg["vae"]), arc, torch.rand(1, height, width, 3), embed,
                                        face_masks(frames, height, width), hjb_core.HJBSettings(start=hjb_steps[0], end=hjb_steps[1]))
    if lever == "compiled":
        from comfy_extras.nodes_torch_compile import TorchCompileModel
        model = TorchCompileModel.execute(model, "inductor").result[0]
        with torch.inference_mode():   # compiles; timed below is the second run
            sampling.run_sampler(model, positive, negative, latent, 0, steps, 3.0, 3.0, "euler", "karras", 1.0)
    meter = Meter(torch.device(model.load_device))
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = sampling.run_sampler(model, positive, negative, latent, 0, steps, 3.0, 3.0, "euler", "karras", 1.0)
    meter.sync()
    seconds, peak = time.perf_counter() - t0, meter.peak_gb()
    import comfy.model_management as mm
    mm.unload_all_models()
    vae = make_vae(cfg["vae"])
    tile = 256 if lever == "tiled" else 0
    dmeter = Meter(torch.device(model.load_device))
    t0 = time.perf_counter()
    with torch.inference_mode():
        images = vae_tiling.decode_video(vae, out["samples"], 4, tile, 64)
    dmeter.sync()
    decode = {"decode_s": time.perf_counter() - t0, "decode_peak_gb": dmeter.peak_gb()}
    return seconds, peak, bool(torch.isfinite(out["samples"]).all() and torch.isfinite(images).all()), decode


def run_baseline(pack, folder, frames, width, height, steps, hjb_steps, cfg, dtype, device):
    """The official loop on diffusers, with the official HJB (full-frame decode of all frames, graphs kept)."""
    import torch
    from diffusers import UNetSpatioTemporalConditionModel
    from fixtures.official_reference import official_reference, reference_v, x0_from_v
    from fixtures import official_weights as ow
    from stableanimator_core.checkpoint import read_state_dict
    from stableanimator_core.sampling.windows import window_indices
    from importlib import import_module
    hjb_core = import_module("sa_pack.stableanimator_core.sampling.hjb")
    torch_dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
    sd = read_state_dict(str(folder / "unet.pth"))
    config = ow.TINY_UNET if cfg["unet"] is not None else {}
    with torch.device("meta"):
        unet = UNetSpatioTemporalConditionModel(**config)
    adapter = {k: v for k, v in sd.items() if ".processor." in k}
    unet.load_state_dict({k: v for k, v in sd.items() if ".processor." not in k}, assign=True)
    unet = official_reference(unet.to(device, torch_dtype).eval(), {k: v.to(device, torch_dtype) for k, v in adapter.items()})
    g = torch.Generator().manual_seed(0)
    h, w = height // 8, width // 8
    ctx = torch.randn(1, 5, 1024, generator=g).to(device, torch_dtype)
    ref_latent = torch.randn(1, 4, h, w, generator=g).to(device, torch_dtype)
    pose = torch.randn(frames, unet.conv_in.out_channels, h, w, generator=g).to(device, torch_dtype)
    time_ids = torch.tensor([[6.0, 127.0, 0.02]], device=device, dtype=torch_dtype)
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    sigmas = [*((700 ** (1 / 7) + ramp * (0.002 ** (1 / 7) - 700 ** (1 / 7))) ** 7).tolist(), 0.0]
    x = torch.randn(frames, 4, h, w, generator=g).to(device, torch_dtype) * math.sqrt(sigmas[0] ** 2 + 1)
    tiles = window_indices(frames, 16, 4)
    if hjb_steps:
        import copy
        vae = make_vae(cfg["vae"])
        with torch.inference_mode(False):
            decoder = copy.deepcopy(vae.first_stage_model.decoder)
            for p in decoder.parameters():
                p.data = p.data.clone()
            decoder = decoder.to(device, torch_dtype).requires_grad_(False)
        arcface = make_arcface(cfg["arcface"], device).to(torch_dtype)
        boxes = torch.tensor([[width * 3 // 8, height // 8, width * 5 // 8 - 1, height * 3 // 8 - 1]] * frames)
        ref_emb = torch.randn(1, 512, device=device, dtype=torch_dtype)
    meter = Meter(torch.device(device))
    t0 = time.perf_counter()
    for i in range(steps):
        s = sigmas[i]
        with torch.no_grad():
            v_c, v_u, wsum = torch.zeros_like(x), torch.zeros_like(x), torch.zeros(frames, device=device, dtype=torch_dtype)
            for tile in tiles:
                n = len(tile)
                wt = torch.tensor([min((j + .5) * 2 / n, 2 - (j + .5) * 2 / n) for j in range(n)], device=device, dtype=torch_dtype)
                v_u[tile] += reference_v(unet, x[tile], s, torch.zeros_like(ref_latent), torch.zeros_like(ctx), time_ids, None) * wt.view(-1, 1, 1, 1)
                v_c[tile] += reference_v(unet, x[tile], s, ref_latent, ctx, time_ids, pose[tile]) * wt.view(-1, 1, 1, 1)
                wsum[tile] += wt
            x0 = x0_from_v(x, s, (v_u + 3.0 * (v_c - v_u)) / wsum.view(-1, 1, 1, 1))
        if hjb_steps and hjb_steps[0] <= i <= hjb_steps[1]:
            with torch.enable_grad():
                z = x0.detach().clone().float().requires_grad_(True)
                opt = torch.optim.Adam([z], lr=0.1 * (1 - i / steps))
                for _ in range(3):
                    # every chunk's graph stays alive until the backward, as in the official pipeline
                    chunks = [decoder((z[k:k + 4] / 0.18215).to(torch_dtype)) for k in range(0, frames, 4)]
                    frames_px = ((torch.cat(chunks).float() + 1) / 2).clamp(0, 1) * 2 - 1
                    loss = hjb_core.identity_loss(arcface.float(), frames_px, boxes, ref_emb.float())
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            x0 = z.detach().to(torch_dtype)
        x = x + (sigmas[i + 1] - s) * (x - x0) / s
    meter.sync()
    return time.perf_counter() - t0, meter.peak_gb(), bool(torch.isfinite(x).all()), {}


LEVERS = ["fp8", "compiled", "tiled"]   # "ours" itself is the fp16 row in --full
SMOKE_LEVERS = ["fp8", "tiled"]


SVD_XT_UNET = {"use_checkpoint": False, "image_size": 32, "use_spatial_transformer": True, "legacy": False,
               "in_channels": 8, "out_channels": 4, "model_channels": 320, "num_res_blocks": [2, 2, 2, 2],
               "channel_mult": [1, 2, 4, 4], "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0],
               "transformer_depth_output": [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0], "transformer_depth_middle": 1,
               "use_linear_in_transformer": True, "context_dim": 1024, "adm_in_channels": 768, "num_classes": "sequential",
               "extra_ff_mix_layer": True, "use_spatial_context": True, "merge_strategy": "learned_with_images",
               "merge_factor": 0.0, "video_kernel_size": [3, 1, 1], "use_temporal_resblock": True,
               "use_temporal_attention": True, "disable_temporal_crossattention": False}


def unet_flops(width, height, frames=16):
    """FLOPs of one SVD-xt UNet call on `frames` frames (one CFG branch), counted on the meta device."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    import comfy.supported_models
    unet = comfy.supported_models.SVD_img2vid(SVD_XT_UNET).get_model({}, device=torch.device("meta")).diffusion_model
    meta = dict(device="meta")
    with FlopCounterMode(display=False) as counter:
        unet(torch.empty(frames, 8, height // 8, width // 8, **meta), torch.empty(frames, **meta),
             context=torch.empty(frames, 5, 1024, **meta), y=torch.empty(frames, 768, **meta), num_video_frames=frames,
             image_only_indicator=torch.zeros(1, frames, **meta), transformer_options={})
    return counter.get_total_flops()


def one(args):
    import torch
    cfg = FULL if args.full else SMOKE
    device = "cuda" if torch.cuda.is_available() else "cpu"
    pack = import_pack()
    hjb_steps = cfg["hjb_steps"] if args.hjb else None
    if args.impl == "ours":
        result = run_ours(pack, Path(args.weights), args.frames, args.width, args.height, cfg["steps"], hjb_steps, cfg,
                          cfg["dtype"], device, args.lever)
    else:
        result = run_baseline(pack, Path(args.weights), args.frames, args.width, args.height, cfg["steps"], hjb_steps,
                              cfg, cfg["dtype"], device)
    seconds, peak, finite, decode = result
    print(json.dumps({"seconds": seconds, "per_step": seconds / cfg["steps"], "peak_gb": peak, "finite": finite, **decode}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="SVD-xt at full size (GPU)")
    parser.add_argument("--impl", choices=["ours", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--frames", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--width", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--height", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--hjb", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--lever", default="none", choices=["none", "fp8", "compiled", "tiled"], help=argparse.SUPPRESS)
    parser.add_argument("--weights", help="folder for the generated weight files")
    parser.add_argument("--flops", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.impl:
        return one(args)
    if args.flops:
        import_pack(sdpa=True)   # PyTorch's attention kernel: what GPUs run, and countable
        for w, h in ((512, 512), (576, 1024)):
            f = unet_flops(w, h)
            print(f"SVD-xt UNet, 16 frames {w}x{h}: {f / 1e12:.1f} TFLOP per branch, {2 * f / 1e12:.1f} TFLOP per step (cond + uncond)")
        return None
    subprocess.run([sys.executable, __file__, "--flops"], check=False)
    cfg = FULL if args.full else SMOKE
    folder = Path(args.weights or os.path.join(tempfile.gettempdir(), "sa_bench_" + ("full" if args.full else "smoke")))
    weights(folder, args.full)
    rows = []
    cases = [(w, h, f, hjb) for (w, h) in cfg["size"] for f in cfg["frames"] for hjb in (False, True)]
    for number, (width, height, frames, hjb) in enumerate(cases):
        levers = LEVERS if args.full else (SMOKE_LEVERS if number == 0 else [])
        result = {}
        for impl in ["ours", "baseline"] + [f"ours {lever}" for lever in levers]:
            cmd = [sys.executable, __file__, "--impl", impl.split()[0], "--frames", str(frames), "--width", str(width),
                   "--height", str(height), "--weights", str(folder)] + (["--full"] if args.full else []) + \
                  (["--hjb"] if hjb else []) + (["--lever", impl.split()[1]] if " " in impl else [])
            proc = subprocess.run(cmd, capture_output=True, text=True)
            lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
            result[impl] = json.loads(lines[-1]) if proc.returncode == 0 and lines else {"error": (proc.stderr or proc.stdout)[-400:]}
        rows.append(((width, height, frames, hjb), result))
        print_row(rows[-1], header=len(rows) == 1)
    return rows


def print_row(row, header=False):
    (w, h, f, hjb), r = row
    if header:
        print(f"{'case':<24}{'impl':<16}{'s/step':>9}{'total s':>9}{'peak GB':>9}{'decode s':>10}{'dec. GB':>9}{'finite':>8}"
              "   ratio to baseline")
    base = r["baseline"]
    case = f"{w}x{h} {f}f {'HJB' if hjb else 'plain'}"
    for name, m in r.items():
        if "error" in m:
            print(f"{case:<24}{name:<16} error: {m['error'].strip().splitlines()[-1] if m['error'].strip() else '?'}")
            continue
        extra = ""
        if name != "baseline" and "error" not in base:
            extra = f"   time {m['per_step'] / base['per_step']:.2f}, memory {m['peak_gb'] / base['peak_gb']:.2f}"
        dec = (f"{m['decode_s']:>10.2f}{m['decode_peak_gb']:>9.2f}" if "decode_s" in m else f"{'-':>10}{'-':>9}")
        print(f"{case:<24}{name:<16}{m['per_step']:>9.3f}{m['seconds']:>9.2f}{m['peak_gb']:>9.2f}{dec}{str(m['finite']):>8}{extra}")
    sys.stdout.flush()


if __name__ == "__main__":
    rows = main()
    # a case of ours that cannot run is a regression, not a figure; the official-semantics baseline running out
    # of memory (its HJB at 64 frames, 576x1024) is a figure
    if rows and any("error" in r for _, result in rows for name, r in result.items() if name != "baseline"):
        sys.exit(1)
