"""Load time and peak memory of the StableAnimator loader on files of the official full size (random weights):
unet.pth (diffusers SVD-xt UNet + 32 adapter tensors, fp32, ~6.2 GB), pose_net.pth, face_encoder.pth.

    .host/venv/bin/python benchmarks/load_full_size.py [--dir /tmp/sa_full] [--dtype auto|fp16|bf16|fp32]

Writing the files happens once (in a separate process); loading runs in a fresh process so its peak RSS is
the loader's own.
"""
import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def write(folder: Path):
    import torch
    from diffusers import UNetSpatioTemporalConditionModel
    sys.path[:0] = [str(REPO), str(REPO / "tests")]
    from fixtures.official_weights import adapter_tensors, face_encoder, pose_net
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "unet.pth").exists():
        unet = UNetSpatioTemporalConditionModel()          # the SVD-xt config; default init is random
        sd = {**unet.state_dict(), **adapter_tensors(unet)}
        torch.save(sd, folder / "unet.pth")
        del unet, sd
    if not (folder / "face_encoder.pth").exists():
        torch.save(pose_net(out_channels=320).state_dict(), folder / "pose_net.pth")
        torch.save(face_encoder(depth=4).state_dict(), folder / "face_encoder.pth")


def load(folder: Path, dtype: str):
    from comfy_host import import_comfy, import_pack
    import_comfy(cpu=True)
    import_pack("sa_pack")
    from sa_pack.nodes import loading
    t0 = time.perf_counter()
    model, animator = loading.load_animator(str(folder / "unet.pth"), str(folder / "pose_net.pth"),
                                            str(folder / "face_encoder.pth"), dtype)
    seconds = time.perf_counter() - t0
    params = sum(p.numel() for p in model.model.diffusion_model.parameters())
    print(json.dumps({"seconds": round(seconds, 2), "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
                      "unet_params": params, "dtype": str(animator.dtype), "adapter_layers": len(animator.id_adapter)}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", default="/tmp/sa_full_size")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--phase", choices=["write", "load"], help=argparse.SUPPRESS)
    a = parser.parse_args()
    folder = Path(a.dir)
    if a.phase == "write":
        return write(folder)
    if a.phase == "load":
        return load(folder, a.dtype)
    sys.path[:0] = [str(REPO / "scripts")]
    t0 = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--phase", "write", "--dir", str(folder)], check=True)
    size = sum(f.stat().st_size for f in folder.glob("*.pth"))
    print(f"files: {size / 1e9:.2f} GB in {folder} (written in {time.perf_counter() - t0:.0f} s)")
    out = subprocess.run([sys.executable, __file__, "--phase", "load", "--dir", str(folder), "--dtype", a.dtype],
                         check=True, capture_output=True, text=True, env={"PYTHONPATH": str(REPO / "scripts"), **__import__("os").environ})
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"load_animator({a.dtype}): {result['seconds']} s, peak RSS {result['peak_rss_gb']} GB, "
          f"UNet {result['unet_params']:,} params as {result['dtype']}, {result['adapter_layers']} ID adapter layers")


if __name__ == "__main__":
    main()
