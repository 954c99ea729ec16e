"""Post-install step (ComfyUI-Manager and comfy-cli run it after requirements.txt).

insightface depends on the CPU `onnxruntime`, while requirements.txt asks for `onnxruntime-gpu` where
CUDA wheels exist. Both install into the same `onnxruntime` package folder, and having both breaks GPU
inference. This leaves exactly one: the GPU build when torch sees a CUDA device, the CPU build otherwise.
Run it again after changing GPUs or torch builds. `SA_ONNXRUNTIME=gpu|cpu` forces a choice.
"""
import importlib.metadata
import os
import subprocess
import sys


def installed(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def want_gpu():
    forced = os.environ.get("SA_ONNXRUNTIME", "").lower()
    if forced in ("gpu", "cpu"):
        return forced == "gpu"
    try:
        import torch
        return torch.cuda.is_available()
    except Exception:
        return False


def pip(*args):
    print("[ComfyUI-StableAnimator] pip", " ".join(args))
    subprocess.check_call([sys.executable, "-m", "pip", *args])


def warn_two_opencvs():
    """Two OpenCV flavours share one cv2 folder: whichever was installed last wins, and uninstalling either
    breaks cv2. Other packs may need either one, so this only says so."""
    flavours = [d for d in ("opencv-python", "opencv-python-headless", "opencv-contrib-python",
                            "opencv-contrib-python-headless") if installed(d)]
    if len(flavours) > 1:
        print(f"[ComfyUI-StableAnimator] note: {', '.join(flavours)} are all installed and share the cv2 package; "
              "if `import cv2` fails, reinstall one of them with --force-reinstall --no-deps")


def main():
    warn_two_opencvs()
    cpu, gpu = installed("onnxruntime"), installed("onnxruntime-gpu")
    if not (cpu and gpu):
        print(f"[ComfyUI-StableAnimator] onnxruntime: {'onnxruntime-gpu ' + gpu if gpu else 'onnxruntime ' + str(cpu)}")
        return
    keep, drop, version = ("onnxruntime-gpu", "onnxruntime", gpu) if want_gpu() else ("onnxruntime", "onnxruntime-gpu", cpu)
    pip("uninstall", "-y", drop)
    # Uninstalling one flavour deletes files the other shares: reinstall the kept one in place.
    pip("install", "--force-reinstall", "--no-deps", f"{keep}=={version}")
    print(f"[ComfyUI-StableAnimator] onnxruntime: kept {keep} {version}, removed {drop}")


if __name__ == "__main__":
    main()
