"""PoseNet: skeleton images -> features added to the UNet's conv_in output.

Parameter names match the official `pose_net.pth` (a flat state dict of 19 tensors), so it loads strictly.
Widths are read from the state dict, so smaller checkpoints with the same layout load too.
"""
import torch
from torch import nn

# (kernel, stride) of the eight convolutions; the official stack downsamples by 8 with three stride-2 convs.
CONV_LAYOUT = [(3, 1), (4, 2), (3, 1), (4, 2), (3, 1), (4, 2), (3, 1), (3, 1)]


class PoseNet(nn.Module):
    def __init__(self, widths=(3, 16, 16, 32, 32, 64, 64, 128), out_channels=320, in_channels=3, operations=nn):
        super().__init__()
        layers = []
        channels = in_channels
        for width, (kernel, stride) in zip(widths, CONV_LAYOUT):
            layers += [operations.Conv2d(channels, width, kernel, stride, padding=1), nn.SiLU()]
            channels = width
        self.conv_layers = nn.Sequential(*layers)  # conv at even indices, SiLU at odd ones, as in the official file
        self.final_proj = operations.Conv2d(channels, out_channels, 1)
        self.scale = nn.Parameter(torch.ones(1) * 2)

    @classmethod
    def from_state_dict_shapes(cls, sd, operations=nn):
        widths = [sd[f"conv_layers.{2 * i}.weight"].shape[0] for i in range(len(CONV_LAYOUT))]
        return cls(widths, sd["final_proj.weight"].shape[0], sd["conv_layers.0.weight"].shape[1], operations)

    def forward(self, pose: torch.Tensor) -> torch.Tensor:
        """pose (N,3,H,W) in [-1,1] (or (B,F,3,H,W)) -> (N, out_channels, H/8, W/8)."""
        if pose.ndim == 5:
            pose = pose.flatten(0, 1)
        return self.final_proj(self.conv_layers(pose)) * self.scale.to(pose.dtype)
