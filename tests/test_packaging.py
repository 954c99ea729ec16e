"""What a user meets before running anything: registry metadata, licence, README, shipped example inputs, the
node library's names and categories, and loader dropdowns that list only files of the right kind."""
import re
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def test_license_file_matches_pyproject():
    text = (REPO / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text
    assert PYPROJECT["project"]["license"] == {"file": "LICENSE"}
    assert "License :: OSI Approved :: Apache Software License" in PYPROJECT["project"]["classifiers"]


def test_registry_metadata(comfy_root):
    """Read the way ComfyUI reads it (comfy_config, the parser behind the registry's pyproject format)."""
    import sys
    sys.path.insert(0, comfy_root)
    from comfy_config import config_parser
    config = config_parser.extract_node_configuration(str(REPO))
    comfy, project = config.tool_comfy, config.project
    assert comfy.publisher_id and comfy.display_name
    repository = project.urls.repository
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", repository), repository
    owner_repo = repository.removeprefix("https://github.com/")
    # the icon is this repository's assets/icon.png, served raw by GitHub
    assert comfy.icon == f"https://raw.githubusercontent.com/{owner_repo}/main/assets/icon.png"
    from PIL import Image
    with Image.open(REPO / "assets" / "icon.png") as icon:
        assert icon.size[0] == icon.size[1] <= 400
    assert project.urls.issues.startswith(repository)
    for model in comfy.models:
        assert model.model_url.startswith("https://huggingface.co/") and model.model_url.endswith(Path(model.location).name)


def test_readme_puts_install_first_and_names_the_licences():
    readme = (REPO / "README.md").read_text()
    sections = re.findall(r"(?m)^## (.+)$", readme)
    assert sections[0] == "Install into your ComfyUI", sections
    assert "What it needs" in sections and "Licences" in sections
    assert re.search(r"antelopev2.*\n?.*non-commercial", readme, re.I | re.S)
    assert "stable-video-diffusion-img2vid-xt" in readme and "GPU memory" in readme and "RAM" in readme
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme):
        assert (REPO / image).is_file(), image
    assert re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", readme), "no screenshot of a workflow"


def test_every_example_input_has_its_licence_stated():
    notes = (REPO / "assets" / "README.md").read_text()
    files = sorted(p.name for p in (REPO / "assets" / "inputs").iterdir())
    assert files
    for name in files:
        row = next((line for line in notes.splitlines() if f"`inputs/{name}`" in line), None)
        assert row and ("public domain" in row or "Apache-2.0" in row), name


# -------------------------------------------------------------------------------------------------------------
# In the host

@pytest.mark.host
def test_display_names_and_categories(comfy_host):
    info = {k: v for k, v in comfy_host.object_info().items() if k.startswith("StableAnimator")}
    assert len(info) >= 15
    for node_id, node in info.items():
        name, category = node["display_name"], node["category"]
        # short words wrap cleanly in the node library's narrow column; the badge and category name the pack
        assert not name.startswith("StableAnimator"), name
        assert max(len(w) for w in name.split()) <= 12 and len(name) <= 24, name
        assert category == "StableAnimator" or category.startswith("StableAnimator/"), (node_id, category)
        is_loader = bool(re.match(r"Load\b", name))
        assert is_loader == (category == "StableAnimator/loaders"), (node_id, name, category)
    names = [n["display_name"] for n in info.values()]
    assert len(set(names)) == len(names), names


@pytest.mark.host
def test_loader_lists_hold_files_of_their_kind(comfy_host):
    folder = comfy_host.models_dir / "stableanimator"
    dwpose = comfy_host.models_dir / "dwpose"
    made = [folder / n for n in ("sa_unet_fp16.safetensors", "my_pose_net.pth", "face_encoder_v2.pth",
                                 "glintr100_torch_copy.pth", "renamed_weights.pth")]
    made += [dwpose / n for n in ("yolox_m.onnx", "dw-ll_ucoco.onnx", "other.onnx")]
    try:
        for f in made:
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(b"")
        inputs = comfy_host.object_info("StableAnimatorModelLoader")["StableAnimatorModelLoader"]["input"]["required"]

        def options(spec):
            return spec[1]["options"] if spec[0] == "COMBO" else spec[0]
        unet, pose, face = (set(options(inputs[k])) for k in ("unet", "pose_net", "face_encoder"))
        assert {"sa_unet_fp16.safetensors", "renamed_weights.pth"} <= unet
        assert not unet & {"my_pose_net.pth", "face_encoder_v2.pth", "glintr100_torch_copy.pth"}, unet
        assert {"my_pose_net.pth", "renamed_weights.pth"} <= pose and "sa_unet_fp16.safetensors" not in pose, pose
        assert {"face_encoder_v2.pth", "renamed_weights.pth"} <= face and "my_pose_net.pth" not in face, face
        assert all("glintr100" not in n for n in unet | pose | face)
        dw = comfy_host.object_info("StableAnimatorDWPoseLoader")["StableAnimatorDWPoseLoader"]["input"]["required"]
        det, est = set(options(dw["detector"])), set(options(dw["pose_model"]))
        assert {"yolox_m.onnx", "other.onnx"} <= det and "dw-ll_ucoco.onnx" not in det, det
        assert {"dw-ll_ucoco.onnx", "other.onnx"} <= est and "yolox_m.onnx" not in est, est
    finally:
        for f in made:
            f.unlink(missing_ok=True)
