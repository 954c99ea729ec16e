"""Which onnxruntime execution providers the pack's onnx models (insightface, DWPose) run on.

Each onnxruntime build offers its own accelerators (onnxruntime-gpu: CUDA/TensorRT, onnxruntime-rocm: ROCm,
onnxruntime-directml: DirectML, the macOS wheel: CoreML, onnxruntime-openvino: OpenVINO). A node offers all of
them by name; `auto` takes the first accelerator this build offers and this machine can use, else the CPU, and
says so in the log when a GPU is left idle for lack of the right onnxruntime package.
"""
from __future__ import annotations

import logging

import torch

from .errors import StableAnimatorError

log = logging.getLogger("StableAnimator")

PROVIDERS = {   # choice shown to the user -> onnxruntime's provider name
    "CPU": "CPUExecutionProvider",
    "CUDA": "CUDAExecutionProvider",
    "ROCm": "ROCMExecutionProvider",
    "MIGraphX": "MIGraphXExecutionProvider",
    "DirectML": "DmlExecutionProvider",
    "CoreML": "CoreMLExecutionProvider",
    "OpenVINO": "OpenVINOExecutionProvider",
}
CHOICES = ["auto", *PROVIDERS]
PACKAGES = {"CUDA": "onnxruntime-gpu", "ROCm": "onnxruntime-rocm", "MIGraphX": "onnxruntime-migraphx",
            "DirectML": "onnxruntime-directml", "CoreML": "onnxruntime (the macOS wheel)",
            "OpenVINO": "onnxruntime-openvino"}
# auto's order. CoreML is left to an explicit choice: it runs only parts of these graphs and can be slower
# than the CPU for them.
AUTO_ORDER = ["CUDA", "ROCm", "MIGraphX", "DirectML", "OpenVINO"]
CHOICES_HELP = (f"ONNX Runtime device. auto = the first GPU provider this onnxruntime offers and this machine can "
                f"use ({', '.join(AUTO_ORDER)}), else CPU. Each needs its onnxruntime flavour (onnxruntime-gpu, "
                "-rocm, -directml, ...); CoreML only when chosen.")
_warned = set()


def offered() -> list[str]:
    """onnxruntime's provider names in this build."""
    try:
        import onnxruntime
    except ImportError as e:
        raise StableAnimatorError("the onnx models need the 'onnxruntime' package: pip install onnxruntime "
                                  "(or onnxruntime-gpu / -rocm / -directml for a GPU)") from e
    return list(onnxruntime.get_available_providers())


def _torch_gpu() -> str | None:
    """'cuda' or 'rocm' when torch sees such a GPU, else None."""
    if not torch.cuda.is_available():
        return None
    return "rocm" if getattr(torch.version, "hip", None) else "cuda"


def _usable(choice: str, gpu: str | None) -> bool:
    if choice == "CUDA":
        return gpu == "cuda"   # onnxruntime-gpu lists CUDA even on machines without an NVIDIA GPU
    if choice in ("ROCm", "MIGraphX"):
        return gpu == "rocm"
    return True


def default_providers(cuda_available: bool | None = None) -> list[str]:
    """auto: the first usable accelerator onnxruntime offers, then the CPU. cuda_available=False forces the CPU."""
    if cuda_available is False:
        return ["CPUExecutionProvider"]
    have = offered()
    gpu = _torch_gpu() if cuda_available is None else "cuda"
    for choice in AUTO_ORDER:
        if PROVIDERS[choice] in have and _usable(choice, gpu):
            return [PROVIDERS[choice], "CPUExecutionProvider"]
    if gpu and gpu not in _warned:
        _warned.add(gpu)
        package = "onnxruntime-gpu" if gpu == "cuda" else "onnxruntime-rocm"
        log.warning("StableAnimator: torch sees a %s GPU but this onnxruntime offers only %s; the face and pose "
                    "models run on the CPU. Install %s (one onnxruntime flavour only) to run them on the GPU.",
                    gpu.upper(), ", ".join(have), package)
    return ["CPUExecutionProvider"]


def provider_problem(choice: str) -> str | None:
    """Why `choice` cannot be used here (for validation), or None."""
    if choice == "auto":
        return None
    if choice not in PROVIDERS:
        return f"'{choice}' is not one of {CHOICES}"
    have = offered()
    if PROVIDERS[choice] not in have:
        names = [c for c, p in PROVIDERS.items() if p in have]
        return (f"{choice} needs onnxruntime's {PROVIDERS[choice]}, which this onnxruntime lacks (it offers "
                f"{', '.join(names) or ', '.join(have)}): install {PACKAGES.get(choice, 'onnxruntime')} in place of "
                "the current onnxruntime package, or choose auto or CPU")
    return None


def providers_for(choice: str) -> list[str]:
    """A node's provider choice -> the provider list for onnxruntime sessions."""
    if choice == "auto":
        return default_providers()
    problem = provider_problem(choice)
    if problem:
        raise StableAnimatorError(f"provider {problem}")
    return [PROVIDERS[choice]] + (["CPUExecutionProvider"] if choice != "CPU" else [])
