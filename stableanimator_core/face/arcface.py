"""The HJB loss's face recogniser: a differentiable torch iresnet (ArcFace, arcface_torch layout).

The official HJB step (facts §6) scores identity with `glintr100_torch.pth`, an iresnet100 trained on
Glint360K: input 112x112 RGB in [-1, 1], output the raw 512-d feature. Two ways to get the weights:

- `load_arcface(path)` reads that `.pth` (or a `.safetensors` with the same keys) strictly;
- `from_onnx(path)` rebuilds the same network from antelopev2's `glintr100.onnx` by reading its
  initializers, so HJB needs no extra download. The exporter may have folded a BatchNorm into the Conv
  before it (then the Conv carries a bias); such BNs become exact identities carrying that bias.

Sizes (blocks per stage, widths, feature size) are read from the weights, so the same code loads the
full iresnet100 ([3, 13, 30, 3], widths 64..512) and the tiny networks the tests build.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import StableAnimatorError
from ..checkpoint import layout_differences, read_state_dict

INPUT_SIZE = 112
BN_EPS = 1e-5
IRESNET100_LAYERS = (3, 13, 30, 3)
IRESNET_WIDTHS = (64, 128, 256, 512)
OFFICIAL_FILE = "glintr100_torch.pth"


@dataclass(frozen=True)
class IResNetConfig:
    layers: tuple = IRESNET100_LAYERS
    widths: tuple = IRESNET_WIDTHS
    stem: int = 64
    num_features: int = 512

    @property
    def fc_in(self) -> int:
        side = INPUT_SIZE // 16  # stem keeps the size, each of the four stages halves it
        return self.widths[-1] * side * side


class IBasicBlock(nn.Module):
    """Pre-activation basic block: BN -> conv3x3 -> BN -> PReLU -> conv3x3(stride) -> BN, plus shortcut."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=BN_EPS)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, eps=BN_EPS)
        self.prelu = nn.PReLU(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes, eps=BN_EPS)
        self.downsample = downsample

    def forward(self, x):
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return out + shortcut


class IResNet(nn.Module):
    """arcface_torch's IResNet with the same module names, so its state dicts load strictly."""

    def __init__(self, config: IResNetConfig = IResNetConfig()):
        super().__init__()
        self.config = config
        self.conv1 = nn.Conv2d(3, config.stem, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(config.stem, eps=BN_EPS)
        self.prelu = nn.PReLU(config.stem)
        inplanes = config.stem
        for index, (blocks, planes) in enumerate(zip(config.layers, config.widths), start=1):
            downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride=2, bias=False),
                                       nn.BatchNorm2d(planes, eps=BN_EPS))
            stage = [IBasicBlock(inplanes, planes, 2, downsample)]
            stage += [IBasicBlock(planes, planes) for _ in range(blocks - 1)]
            setattr(self, f"layer{index}", nn.Sequential(*stage))
            inplanes = planes
        self.bn2 = nn.BatchNorm2d(inplanes, eps=BN_EPS)
        self.dropout = nn.Dropout(p=0.0)
        self.fc = nn.Linear(config.fc_in, config.num_features)
        self.features = nn.BatchNorm1d(config.num_features, eps=BN_EPS)

    @property
    def stages(self):
        return [getattr(self, f"layer{i}") for i in range(1, len(self.config.layers) + 1)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, 112, 112) RGB in [-1, 1] -> (B, num_features) raw (un-normalised) embedding."""
        if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            raise StableAnimatorError(f"ArcFace expects 112x112 face crops, got {tuple(x.shape[-2:])}; "
                                      "use face_crop.crop_faces first")
        x = self.prelu(self.bn1(self.conv1(x)))
        for stage in self.stages:
            x = stage(x)
        x = self.dropout(torch.flatten(self.bn2(x), 1))
        return self.features(self.fc(x))


# ---------------------------------------------------------------------------------------------------
# .pth / .safetensors
# ---------------------------------------------------------------------------------------------------

def expected_keys(config: IResNetConfig = IResNetConfig()) -> dict[str, tuple]:
    """Every state-dict key of the architecture with its shape, computed without allocating weights."""
    with torch.device("meta"):
        model = IResNet(config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _read_state_dict(path: str) -> dict[str, torch.Tensor]:
    sd = read_state_dict(path)
    if sd and all(k.startswith("module.") for k in sd):   # saved from a DataParallel wrapper
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def config_from_state_dict(sd: dict[str, torch.Tensor], path: str = "<state dict>") -> IResNetConfig:
    try:
        stem = sd["conv1.weight"].shape[0]
        layers, widths = [], []
        for stage in range(1, 5):
            blocks = {int(k.split(".")[1]) for k in sd if k.startswith(f"layer{stage}.") and k.split(".")[1].isdigit()}
            if not blocks:
                raise KeyError(f"layer{stage}.0.conv1.weight")
            layers.append(max(blocks) + 1)
            widths.append(sd[f"layer{stage}.0.conv1.weight"].shape[0])
        num_features = sd["fc.weight"].shape[0]
    except KeyError as e:
        raise StableAnimatorError(_key_report(path, missing=[e.args[0]], unexpected=list(sd)[:5])) from None
    return IResNetConfig(layers=tuple(layers), widths=tuple(widths), stem=stem, num_features=num_features)


def _key_report(path, missing=(), unexpected=(), shapes=()) -> str:
    parts = []
    if missing:
        parts.append("missing keys " + ", ".join(list(missing)[:5]) + (" ..." if len(missing) > 5 else ""))
    if unexpected:
        parts.append("unexpected keys " + ", ".join(list(unexpected)[:5]) + (" ..." if len(unexpected) > 5 else ""))
    if shapes:
        parts.append("wrong shapes " + ", ".join(list(shapes)[:5]) + (" ..." if len(shapes) > 5 else ""))
    return (f"'{os.path.basename(str(path))}' is not an arcface_torch iresnet (e.g. the official {OFFICIAL_FILE}, "
            f"925 tensors, fc.weight [512, 25088]): " + "; ".join(parts) + ".")


def load_state_dict_strict(model: IResNet, sd: dict[str, torch.Tensor], path: str = "<state dict>") -> IResNet:
    want = expected_keys(model.config)
    missing, unexpected, wrong = layout_differences(sd, want)
    shapes = [f"{k} {list(sd[k].shape)} (expected {list(want[k])})" for k in wrong]
    if missing or unexpected or shapes:
        raise StableAnimatorError(_key_report(path, missing, unexpected, shapes))
    model.load_state_dict(sd, strict=True)
    return model


def load_arcface(path: str, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> IResNet:
    """glintr100_torch.pth (or .safetensors, or glintr100.onnx) -> IResNet in eval mode, no grad on weights."""
    if str(path).lower().endswith(".onnx"):
        return from_onnx(path, device=device, dtype=dtype)
    sd = _read_state_dict(path)
    config = config_from_state_dict(sd, path)
    model = load_state_dict_strict(IResNet(config), sd, path)
    return _finish(model, device, dtype)


def _finish(model: IResNet, device, dtype) -> IResNet:
    model.eval().requires_grad_(False)
    return model.to(device=device, dtype=dtype)


# ---------------------------------------------------------------------------------------------------
# glintr100.onnx -> IResNet
# ---------------------------------------------------------------------------------------------------

# Ops that carry no weights and that an iresnet export may contain around the ones we map.
_PASSIVE_OPS = {"Add", "Flatten", "Reshape", "Identity", "Dropout", "Constant", "Shape", "Gather",
                "Unsqueeze", "Concat", "Cast", "Squeeze"}


class _OnnxGraph:
    def __init__(self, path: str):
        try:
            import onnx
            from onnx import numpy_helper
        except ImportError as e:  # pragma: no cover - onnx ships with insightface
            raise StableAnimatorError("reading glintr100.onnx needs the 'onnx' package (pip install onnx)") from e
        if not os.path.isfile(path):
            raise StableAnimatorError(f"ONNX file not found: {path}")
        try:
            model = onnx.load(path)
        except Exception as e:  # noqa: BLE001
            raise StableAnimatorError(f"could not read '{path}' as ONNX: {e}") from e
        self.path = path
        self.nodes = list(model.graph.node)
        self.tensors = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        for node in self.nodes:
            if node.op_type == "Constant":
                for attr in node.attribute:
                    if attr.name == "value":
                        self.tensors[node.output[0]] = numpy_helper.to_array(attr.t)
        self.consumers: dict[str, list] = {}
        self.producer: dict[str, object] = {}
        for node in self.nodes:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
            for name in node.output:
                self.producer[name] = node

    def weight(self, node, index: int) -> torch.Tensor | None:
        if len(node.input) <= index or not node.input[index]:
            return None
        name = node.input[index]
        if name not in self.tensors:
            raise self.error(f"{node.op_type} node '{node.name}' takes a computed tensor '{name}' as a weight")
        return torch.from_numpy(self.tensors[name].copy()).float()

    @staticmethod
    def attr(node, name, default=None):
        import onnx
        for a in node.attribute:
            if a.name == name:
                return onnx.helper.get_attribute_value(a)
        return default

    def error(self, what: str) -> StableAnimatorError:
        return StableAnimatorError(f"'{os.path.basename(self.path)}' is not an iresnet ArcFace ONNX like antelopev2's "
                                   f"glintr100.onnx: {what}.")


def _bn_params(graph: _OnnxGraph, node) -> dict:
    return {"weight": graph.weight(node, 1), "bias": graph.weight(node, 2), "running_mean": graph.weight(node, 3),
            "running_var": graph.weight(node, 4), "eps": float(graph.attr(node, "epsilon", 1e-5))}


def _identity_bn(bias: torch.Tensor | None, channels: int) -> dict:
    """A BatchNorm that computes y + bias exactly: what remains of a BN the exporter folded into its conv."""
    return {"weight": torch.ones(channels), "bias": torch.zeros(channels) if bias is None else bias,
            "running_mean": torch.zeros(channels), "running_var": torch.full((channels,), 1.0 - BN_EPS),
            "eps": BN_EPS}


def from_onnx(path: str, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> IResNet:
    """Rebuild the torch IResNet from an iresnet ArcFace ONNX (antelopev2 glintr100.onnx) by its initializers."""
    graph = _OnnxGraph(path)
    unknown = sorted({n.op_type for n in graph.nodes} - _PASSIVE_OPS - {"Conv", "BatchNormalization", "PRelu",
                                                                         "Gemm", "MatMul"})
    if unknown:
        raise graph.error(f"unsupported ops {unknown} (expected Conv, BatchNormalization, PRelu, Add, Flatten, Gemm)")

    convs, loose_bns, prelus, dense = [], [], [], []
    for node in graph.nodes:
        op = node.op_type
        if op == "Conv":
            users = graph.consumers.get(node.output[0], [])
            bn = users[0] if len(users) == 1 and users[0].op_type == "BatchNormalization" else None
            convs.append((node, bn))
        elif op == "BatchNormalization":
            producer = graph.producer.get(node.input[0])
            if not (producer is not None and producer.op_type == "Conv"
                    and len(graph.consumers.get(producer.output[0], [])) == 1):
                loose_bns.append(node)
        elif op == "PRelu":
            prelus.append(node)
        elif op in ("Gemm", "MatMul"):
            dense.append(node)

    if not convs or graph.weight(convs[0][0], 1).shape[1] != 3:
        raise graph.error("the first convolution does not take a 3-channel image")
    # Group the convolutions into the stem and blocks (conv1, conv2[, 1x1 shortcut]).
    # Export order is conv1, conv2, shortcut; a shortcut met earlier waits for its block (matched by shape).
    blocks, pending, held = [], None, None
    for node, bn in convs[1:]:
        w = graph.weight(node, 1)
        if w.shape[-1] == 1:
            last = blocks[-1] if blocks else None
            if (pending is None and last is not None and "downsample" not in last
                    and tuple(w.shape[:2]) == tuple(graph.weight(last["conv1"][0], 1).shape[:2])):
                last["downsample"] = (node, bn)
            elif held is None:
                held = (node, bn)
            else:
                raise graph.error(f"the 1x1 convolution '{node.name}' belongs to no residual block")
        elif pending is None:
            pending = (node, bn)
        else:
            strides = graph.attr(node, "strides", [1, 1])
            blocks.append({"conv1": pending, "conv2": (node, bn), "stride": int(strides[0])})
            if held is not None:
                blocks[-1]["downsample"], held = held, None
            pending = None
    if pending is not None or held is not None or not blocks:
        raise graph.error("the 3x3 convolutions do not pair up into residual blocks")
    layers, widths = [], []
    for block in blocks:
        if block["stride"] == 2 or not layers:
            if "downsample" not in block:
                raise graph.error("a stage starts without a strided 1x1 shortcut convolution")
            layers.append(0)
            widths.append(graph.weight(block["conv2"][0], 1).shape[0])
        layers[-1] += 1
    if len(layers) != 4:
        raise graph.error(f"found {len(layers)} stages, expected 4")
    if len(loose_bns) != len(blocks) + 2:
        raise graph.error(f"found {len(loose_bns)} stand-alone BatchNormalization nodes, expected {len(blocks) + 2} "
                          "(one per block, one after the last stage, one on the features)")
    if len(prelus) != len(blocks) + 1:
        raise graph.error(f"found {len(prelus)} PRelu nodes, expected {len(blocks) + 1}")
    if len(dense) != 1:
        raise graph.error(f"found {len(dense)} Gemm/MatMul nodes, expected one (fc)")

    fc_node = dense[0]
    fc_w = graph.weight(fc_node, 1)
    if fc_node.op_type == "MatMul" or not graph.attr(fc_node, "transB", 0):
        fc_w = fc_w.t()
    fc_b = graph.weight(fc_node, 2) if fc_node.op_type == "Gemm" else None
    if fc_node.op_type == "MatMul":
        adds = [n for n in graph.consumers.get(fc_node.output[0], []) if n.op_type == "Add"]
        fc_b = next((graph.weight(n, i) for n in adds for i in (0, 1) if n.input[i] in graph.tensors), None)
    if fc_node.op_type == "Gemm":
        alpha, beta = float(graph.attr(fc_node, "alpha", 1.0)), float(graph.attr(fc_node, "beta", 1.0))
        fc_w = fc_w * alpha
        fc_b = None if fc_b is None else fc_b * beta
    stem_w = graph.weight(convs[0][0], 1)
    config = IResNetConfig(layers=tuple(layers), widths=tuple(widths), stem=stem_w.shape[0],
                           num_features=fc_w.shape[0])
    if fc_w.shape[1] != config.fc_in:
        raise graph.error(f"fc takes {fc_w.shape[1]} features, expected {config.fc_in} for 112x112 input")

    sd: dict[str, torch.Tensor] = {}
    eps: dict[str, float] = {}

    def put_bn(prefix, params):
        eps[prefix] = params.pop("eps")
        for k, v in params.items():
            sd[f"{prefix}.{k}"] = v
        sd[f"{prefix}.num_batches_tracked"] = torch.tensor(0)

    def put_conv(conv_name, bn_name, pair):
        node, bn = pair
        w = graph.weight(node, 1)
        sd[f"{conv_name}.weight"] = w
        if bn is not None:
            params = _bn_params(graph, bn)
            bias = graph.weight(node, 2)
            if bias is not None:  # conv bias before a BN: shift the BN's mean instead
                params["running_mean"] = params["running_mean"] - bias
            put_bn(bn_name, params)
        else:
            put_bn(bn_name, _identity_bn(graph.weight(node, 2), w.shape[0]))

    put_conv("conv1", "bn1", convs[0])
    sd["prelu.weight"] = graph.weight(prelus[0], 1).flatten()
    index = 0
    for stage, count in enumerate(layers, start=1):
        for j in range(count):
            block, p = blocks[index], f"layer{stage}.{j}"
            put_bn(f"{p}.bn1", _bn_params(graph, loose_bns[index]))
            put_conv(f"{p}.conv1", f"{p}.bn2", block["conv1"])
            sd[f"{p}.prelu.weight"] = graph.weight(prelus[index + 1], 1).flatten()
            put_conv(f"{p}.conv2", f"{p}.bn3", block["conv2"])
            if "downsample" in block:
                put_conv(f"{p}.downsample.0", f"{p}.downsample.1", block["downsample"])
            index += 1
    put_bn("bn2", _bn_params(graph, loose_bns[-2]))
    sd["fc.weight"] = fc_w.contiguous()
    sd["fc.bias"] = torch.zeros(fc_w.shape[0]) if fc_b is None else fc_b
    put_bn("features", _bn_params(graph, loose_bns[-1]))

    model = IResNet(config)
    for name, module in model.named_modules():
        if name in eps:
            module.eps = eps[name]
    load_state_dict_strict(model, sd, path)
    return _finish(model, device, dtype)
