"""The pack's model folders, registered with ComfyUI's folder_paths so extra_model_paths.yaml works.

models/stableanimator/        unet.pth, pose_net.pth, face_encoder.pth, glintr100_torch.pth (or .safetensors)
models/insightface/models/antelopev2/   scrfd_10g_bnkps.onnx, glintr100.onnx (+ the rest of the pack)
models/dwpose/                yolox_l.onnx, dw-ll_ucoco_384.onnx
svd_xt.safetensors stays in ComfyUI's own models/checkpoints/.
"""
import os
import re

import folder_paths

WEIGHT_EXTENSIONS = {".pth", ".pt", ".safetensors"}
FOLDERS = {
    "stableanimator": ("stableanimator", WEIGHT_EXTENSIONS),
    "insightface": ("insightface", {".onnx"}),
    "dwpose": ("dwpose", {".onnx"}),
}
OFFICIAL_WEIGHTS = "https://huggingface.co/FrancisRing/StableAnimator"
LOADER_CATEGORY = "StableAnimator/loaders"
# Where the files of each folder are published, for messages about missing files.
SOURCES = {
    "checkpoints": "https://huggingface.co/stabilityai/stable-video-diffusion-img2vid-xt (svd_xt.safetensors), "
                   f"or SVD/ in {OFFICIAL_WEIGHTS}",
    "stableanimator": f"official StableAnimator weights: {OFFICIAL_WEIGHTS}, folder Animation/",
    "insightface": f"insightface's antelopev2 pack, also models/antelopev2 in {OFFICIAL_WEIGHTS}",
    "dwpose": f"https://huggingface.co/yzd-v/DWPose, also DWPose/ in {OFFICIAL_WEIGHTS}",
}


def register():
    """Add our keys, keeping paths a user already set in extra_model_paths.yaml."""
    for key, (subdir, extensions) in FOLDERS.items():
        default = os.path.join(folder_paths.models_dir, subdir)
        paths, exts = folder_paths.folder_names_and_paths.get(key, ([], set()))
        if default not in paths:
            paths = [*paths, default]
        folder_paths.folder_names_and_paths[key] = (paths, set(exts) | extensions)


def folder_hint(key: str) -> str:
    """Where a user should put the files of `key`, for error messages."""
    paths = folder_paths.get_folder_paths(key)
    return " or ".join(paths) if paths else os.path.join(folder_paths.models_dir, FOLDERS[key][0])


def missing_message(key: str, name: str) -> str:
    return (f"'{name}' was not found in the {key} model folder ({folder_hint(key)}). Put the file there "
            f"({SOURCES.get(key, OFFICIAL_WEIGHTS)}) and press 'r' in ComfyUI to refresh the lists.")


_DRIVE = re.compile(r"^[A-Za-z]:")


def leaves_folder(name: str) -> bool:
    """True for a name that is absolute (any OS's way) or climbs out of its model folder with '..'."""
    return (os.path.isabs(name) or name.startswith(("/", "\\")) or bool(_DRIVE.match(name))
            or ".." in name.replace("\\", "/").split("/"))


def full_path(key: str, name: str) -> str:
    """Like folder_paths.get_full_path_or_raise, with a message that says where files go. A name that climbs
    out of the folder is refused (validation refuses it earlier; this guards linked string inputs)."""
    if leaves_folder(name):
        raise FileNotFoundError(f"'{name}' points outside the {key} model folder ({folder_hint(key)}); "
                                "choose a file from the list")
    path = folder_paths.get_full_path(key, name)
    if path is None:
        raise FileNotFoundError(missing_message(key, name))
    return path


def files_of_kind(names: list[str], kind: str, kinds: dict[str, tuple[str, ...]]) -> list[str]:
    """The entries of a loader dropdown: files whose name says they are `kind`, then files whose name says no kind
    at all (a renamed file stays pickable); files named as another kind are left out. `kinds` maps each kind to
    lower-case name fragments."""
    def kinds_of(name):
        base = os.path.basename(name).lower()
        return {k for k, fragments in kinds.items() if any(f in base for f in fragments)}
    named = [n for n in names if kind in kinds_of(n)]
    unnamed = [n for n in names if not kinds_of(n)]
    return named + unnamed
