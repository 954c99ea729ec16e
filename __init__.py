"""ComfyUI-StableAnimator: pose-driven, identity-preserving human image animation (StableAnimator, CVPR 2025)
on ComfyUI's own Stable Video Diffusion model. ComfyUI loads the nodes through comfy_entrypoint (V3)."""
import importlib.util

# Outside ComfyUI (pytest collecting this folder, a linter) there is nothing to register.
if importlib.util.find_spec("comfy_api") is not None:
    from .nodes import StableAnimatorExtension, model_folders

    # Registered at import as well as in on_load, so that file lists are right for the first /object_info.
    model_folders.register()

    async def comfy_entrypoint() -> StableAnimatorExtension:
        return StableAnimatorExtension()
