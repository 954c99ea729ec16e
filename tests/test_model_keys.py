"""Every official key maps onto ComfyUI's layout; wrong files are refused with messages that name the problem."""
import re
from pathlib import Path

import pytest
import torch

from stableanimator_core.checkpoint import build_strict, check_layout, read_state_dict
from stableanimator_core.errors import StableAnimatorError
from stableanimator_core.model.face_encoder import FaceEncoder
from stableanimator_core.model.pose_net import PoseNet
from stableanimator_core.model.unet_keys import split_official_unet

# Every official parameter name and shape, dumped from the official modules at full size (its header says how)
OFFICIAL_KEYS = Path(__file__).parent / "fixtures" / "official_keys.txt"


def official_section(title_start: str) -> dict:
    """{name: shape} of one '## ...' section of official_keys.txt."""
    out, inside = {}, False
    for line in OFFICIAL_KEYS.read_text().splitlines():
        if line.startswith("## "):
            inside = line.startswith("## " + title_start)
            continue
        if inside and (m := re.match(r"^(\S+) \[([\d, ]*)\]$", line)):
            out[m.group(1)] = tuple(int(x) for x in m.group(2).split(",") if x.strip())
    assert out, title_start
    return out


def meta_state_dict(module):
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def test_pose_net_and_face_encoder_have_the_official_names_and_shapes():
    pose = official_section("PoseNet")
    face = official_section("FusionFaceId")
    assert len(pose) == 19 and len(face) == 56
    with torch.device("meta"):
        assert meta_state_dict(PoseNet()) == pose
        assert meta_state_dict(FaceEncoder()) == face
        # built back from the official shapes alone
        assert meta_state_dict(FaceEncoder.from_state_dict_shapes({k: torch.empty(s) for k, s in face.items()})) == face


@pytest.fixture(scope="module")
def full_size_layouts(comfy_inprocess):
    """The official diffusers UNet key set (1428 stock + 32 adapter) and ComfyUI's SVD-xt UNet, on the meta device."""
    from diffusers import UNetSpatioTemporalConditionModel
    import comfy.model_detection
    import comfy.supported_models
    with torch.device("meta"):
        stock = UNetSpatioTemporalConditionModel()   # diffusers' defaults are the SVD-xt config
    official = {k: torch.empty(v.shape, device="meta") for k, v in stock.state_dict().items()}
    adapters = official_section("UNet keys NOT in stock")
    assert len(adapters) == 32
    official.update({k: torch.empty(s, device="meta") for k, s in adapters.items()})
    unet_sd, adapter = split_official_unet(official)
    config = comfy.model_detection.detect_unet_config(unet_sd, "")
    model = comfy.supported_models.SVD_img2vid(config).get_model({}, device=torch.device("meta"))
    comfy_layout = {k[len("diffusion_model."):]: tuple(v.shape) for k, v in model.state_dict().items()
                    if k.startswith("diffusion_model.")}
    return official, unet_sd, adapter, comfy_layout, model


def test_every_official_unet_key_maps_onto_comfy_svd(full_size_layouts):
    official, unet_sd, adapter, comfy_layout, _ = full_size_layouts
    assert len(official) == 1460
    assert len(unet_sd) == 1428 and len(comfy_layout) == 1428
    assert {k: tuple(v.shape) for k, v in unet_sd.items()} == comfy_layout
    assert sum(t.numel() for t in unet_sd.values()) == 1_524_623_082


def test_adapter_goes_to_the_16_spatial_cross_attentions(full_size_layouts):
    _, _, adapter, comfy_layout, model = full_size_layouts
    spatial_attn2 = {name[len("diffusion_model."):] for name, _ in model.named_modules()
                     if re.search(r"\.transformer_blocks\.0\.attn2$", name) and ".time_stack." not in name}
    assert set(adapter) == spatial_attn2 and len(adapter) == 16
    for path, kv in adapter.items():
        assert tuple(kv["id_to_k"].shape) == comfy_layout[path + ".to_k.weight"]
    assert "middle_block.1.transformer_blocks.0.attn2" in adapter
    assert "output_blocks.11.1.transformer_blocks.0.attn2" in adapter


def test_unknown_unet_key_is_refused_by_name(full_size_layouts):
    official = dict(full_size_layouts[0])
    official["down_blocks.0.attentions.0.transformer_blocks.0.attn2.processor.lora.weight"] = torch.empty(1, device="meta")
    with pytest.raises(StableAnimatorError, match=r"unet.pth: 1 key\(s\).*processor.lora.weight"):
        split_official_unet(official, "unet.pth")


def test_renamed_or_reshaped_keys_are_refused_naming_them(tmp_path):
    sd = PoseNet().state_dict()
    renamed = dict(sd)
    renamed["conv_layers.4.weightx"] = renamed.pop("conv_layers.4.weight")
    with pytest.raises(StableAnimatorError, match=r"pose_net.pth.*conv_layers.4.weight"):
        build_strict(PoseNet, renamed, "pose_net.pth")
    reshaped = dict(sd)
    reshaped["conv_layers.8.bias"] = torch.zeros(33)
    with pytest.raises(StableAnimatorError, match=r"pose_net.pth.*wrong shape.*conv_layers.8.bias \(33,\)"):
        build_strict(PoseNet, reshaped, "pose_net.pth")
    with pytest.raises(StableAnimatorError, match=r"unet.pth.*missing.*'a'.*unexpected.*'c'.*wrong shape.*'b \(2,\) \(expected \(3,\)\)'"):
        check_layout({"b": torch.zeros(2), "c": torch.zeros(1)}, {"a": (1,), "b": (3,)}, "unet.pth")


def test_files_are_read_safely(tmp_path):
    sd = {"w": torch.arange(4.0)}
    torch.save(sd, tmp_path / "ok.pth")
    assert torch.equal(read_state_dict(str(tmp_path / "ok.pth"))["w"], sd["w"])
    from safetensors.torch import save_file
    save_file(sd, str(tmp_path / "ok.safetensors"))
    assert torch.equal(read_state_dict(str(tmp_path / "ok.safetensors"))["w"], sd["w"])

    (tmp_path / "cut.pth").write_bytes((tmp_path / "ok.pth").read_bytes()[:100])
    with pytest.raises(StableAnimatorError, match="cut.pth could not be read"):
        read_state_dict(str(tmp_path / "cut.pth"))


class Boom:
    """Unpickling this opens (creates) `path`: proof that the pickle ran."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_pth_with_code_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "pickle_ran"
    torch.save({"w": torch.zeros(1), "evil": Boom(marker)}, tmp_path / "evil.pth")
    with pytest.raises(StableAnimatorError, match="evil.pth was refused"):
        read_state_dict(str(tmp_path / "evil.pth"))
    assert not marker.exists()


def test_converter_keeps_names_and_casts(tmp_path):
    from stableanimator_core.convert import main
    torch.save(PoseNet().state_dict(), tmp_path / "pose_net.pth")
    assert main([str(tmp_path / "pose_net.pth"), str(tmp_path / "pose_net.safetensors"), "--fp16"]) == 0
    out = read_state_dict(str(tmp_path / "pose_net.safetensors"))
    assert set(out) == set(PoseNet().state_dict()) and out["final_proj.weight"].dtype == torch.float16


def test_loader_refuses_a_small_unet_with_one_key_renamed_or_reshaped(pack, tmp_path):
    """Through the pack's loader: a correct small unet.pth loads; a renamed or reshaped key is named."""
    from importlib import import_module
    from fixtures.official_weights import adapter_tensors, diffusers_unet
    loading = import_module(pack.__name__ + ".nodes.loading")
    PackError = import_module(pack.__name__ + ".stableanimator_core.errors").StableAnimatorError  # the pack's own copy
    unet = diffusers_unet()
    sd = {**unet.state_dict(), **adapter_tensors(unet)}
    torch.save(sd, tmp_path / "unet.pth")
    model, adapter, _ = loading.load_unet(str(tmp_path / "unet.pth"), torch.float32)
    assert len(adapter) == 16 and model.model.diffusion_model.input_blocks[0][0].weight.shape[0] == 64

    renamed = dict(sd)
    renamed["conv_out.weightx"] = renamed.pop("conv_out.weight")
    torch.save(renamed, tmp_path / "unet_renamed.pth")
    with pytest.raises(PackError, match=r"unet_renamed.pth.*missing.*'out.2.weight'.*unexpected.*conv_out.weightx"):
        loading.load_unet(str(tmp_path / "unet_renamed.pth"), torch.float32)

    reshaped = dict(sd)
    key = "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight"
    reshaped[key] = torch.zeros(128, 64)
    torch.save(reshaped, tmp_path / "unet_reshaped.pth")
    with pytest.raises(PackError, match=r"unet_reshaped.pth.*wrong shape.*down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight \(128, 64\)"):
        loading.load_unet(str(tmp_path / "unet_reshaped.pth"), torch.float32)
