"""Which onnxruntime execution providers the pack's onnx models (insightface, DWPose) run on."""
import torch


def default_providers(cuda_available: bool | None = None) -> list[str]:
    """CUDA when onnxruntime lists it and a CUDA device is usable (torch's view unless told), else the CPU."""
    import onnxruntime
    if cuda_available is None:
        cuda_available = torch.cuda.is_available()
    if cuda_available and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]
