"""GLaMM's region encoder (`model/layers.py::MLVLROIQueryModule`) in plain torch: no mmcv/mmdet.

Upstream builds it on mmcv's `ConvModule`, `Linear` and `RoIAlign` and mmdet's `BaseRoIExtractor`; the
module names below are theirs, so the checkpoint keys `model.region_encoder.*` load unchanged:

    mlvl_fuse.input_conv.{0..3}.{weight,bias}          Conv2d(C+2 → C, 1×1) per level (C = CLIP width)
    mlvl_fuse.fuse_convs.{0..4}.conv.weight            ConvModule: Conv2d(C → C, 3×3, no bias) → GN(64) → ReLU
    mlvl_fuse.fuse_convs.{0..4}.gn.{weight,bias}
    roi_align.pconvs.{0..3}.{weight,bias}              Conv2d(C → C, 3×3) per level
    roi_align.pos_embedd.{0,2,3,5}.*                   Linear(4→256) ReLU LN(256) Linear(256→1024) ReLU LN(1024)
    roi_align.flatten_linear.{weight,bias}             Linear(C·14·14 → 1024)
    roi_align.updims.{weight,bias}                     Linear(1024 → 4096 = LLM width)

Forward (per image; upstream runs it only when boxes are given):
1. The 4 CLIP levels (hidden states [select_layer::-3], reversed, last 4, CLS dropped) are reshaped to
   24×24 maps and bilinearly resized (align_corners=True, in float32) to 192, 96, 48 and 24 pixels (level 0,
   the earliest layer, the finest), then cast to the model dtype (upstream: bfloat16, its only dtype).
2. `mlvl_fuse`: each level gets two coordinate channels (x, y = linspace(-1, 1) grids) and its 1×1 conv;
   then 5 rounds, each sharing one ConvModule over the levels, of channel shuffling: a level keeps its first
   C/2 channels and takes channels [C/2 : 3C/4] of the level below (max(l-1, 0)) and [3C/4 : C] of the level
   above (min(l+1, 3)), both resized to its size (bilinear, align_corners=True, float32).
3. `roi_align`: boxes (xyxy normalised to [0, 1]) are multiplied by 224 — not 336, although the maps cover
   336 px (strides 14/8, 14/4, 14/2, 14) — upstream's constant, kept; RoIAlign (mmcv, aligned=True, avg,
   14×14 output, sampling_ratio 2) on every level in float32; per level a 3×3 conv, summed, ReLU, flattened,
   `flatten_linear`, plus `pos_embedd(box)`, then `updims`: one LLM embedding per box.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class RegionSizes:
    """Upstream's constants (MLVLROIQueryModule(embed_dims=1024, out_dims=4096, num_levels=4)); tests shrink them."""

    embed_dims: int = 1024
    out_dims: int = 4096
    pos_hidden: int = 256
    hidden: int = 1024
    num_levels: int = 4
    num_fuse: int = 5
    gn_groups: int = 64
    roi_size: int = 14
    sampling_ratio: int = 2
    box_scale: float = 224.0
    strides: tuple[float, ...] = (14 / 8, 14 / 4, 14 / 2, 14)


class ConvGnRelu(nn.Module):
    """mmcv ConvModule(C, C, 3, padding=1, norm_cfg=GN): conv (bias off because of the norm) → gn → ReLU."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.gn = nn.GroupNorm(groups, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.gn(self.conv(x)))


class MlvlFuse(nn.Module):
    def __init__(self, sizes: RegionSizes):
        super().__init__()
        channels, levels = sizes.embed_dims, sizes.num_levels
        self.shuffle = channels // 4
        self.remain = channels - 2 * self.shuffle
        self.pairs = [(level, min(level + 1, levels - 1), max(level - 1, 0)) for level in range(levels)]
        self.input_conv = nn.ModuleList(nn.Conv2d(channels + 2, channels, 1) for _ in range(levels))
        self.fuse_convs = nn.ModuleList(ConvGnRelu(channels, sizes.gn_groups) for _ in range(sizes.num_fuse))

    def forward(self, levels: list[torch.Tensor]) -> list[torch.Tensor]:
        with_coordinates = []
        for feature in levels:
            batch, _, height, width = feature.shape
            xs = torch.linspace(-1, 1, width, device=feature.device)
            ys = torch.linspace(-1, 1, height, device=feature.device)
            y, x = torch.meshgrid(ys, xs, indexing="ij")
            grid = torch.stack([x, y])[None].expand(batch, -1, -1, -1)
            with_coordinates.append(torch.cat([feature, grid.to(feature.dtype)], dim=1))
        levels = [conv(feature) for conv, feature in zip(self.input_conv, with_coordinates)]
        for conv in self.fuse_convs:
            levels = [conv(self._shuffled(levels, target, top, down)) for target, top, down in self.pairs]
        return levels

    def _shuffled(self, levels: list[torch.Tensor], target: int, top: int, down: int) -> torch.Tensor:
        size = levels[target].shape[-2:]
        keep = levels[target][:, :self.remain]
        from_top = levels[top][:, self.remain + self.shuffle:]
        from_down = levels[down][:, self.remain:self.remain + self.shuffle]
        resize = lambda x: F.interpolate(x.float(), size=size, mode="bilinear", align_corners=True).to(keep.dtype)
        return torch.cat([keep, resize(from_top), resize(from_down)], dim=1)


class MlvlRoiExtractor(nn.Module):
    def __init__(self, sizes: RegionSizes):
        super().__init__()
        self.sizes = sizes
        channels = sizes.embed_dims
        self.pconvs = nn.ModuleList(nn.Conv2d(channels, channels, 3, padding=1) for _ in range(sizes.num_levels))
        self.pos_embedd = nn.Sequential(
            nn.Linear(4, sizes.pos_hidden), nn.ReLU(), nn.LayerNorm(sizes.pos_hidden),
            nn.Linear(sizes.pos_hidden, sizes.hidden), nn.ReLU(), nn.LayerNorm(sizes.hidden))
        self.updims = nn.Linear(sizes.hidden, sizes.out_dims)
        self.flatten_linear = nn.Linear(channels * sizes.roi_size ** 2, sizes.hidden)

    def forward(self, levels: list[torch.Tensor], boxes: list[torch.Tensor]) -> list[torch.Tensor]:
        sizes = self.sizes
        dtype = levels[0].dtype
        position = self.pos_embedd(torch.cat(boxes).to(dtype))
        rois = torch.cat([torch.cat([torch.full_like(b[:, :1], image), b * sizes.box_scale], dim=1)
                          for image, b in enumerate(boxes)])
        pooled = [roi_align(feature.float(), rois.float(), sizes.roi_size, 1 / stride, sizes.sampling_ratio).to(dtype)
                  for feature, stride in zip(levels, sizes.strides)]
        fused = sum(conv(feature) for conv, feature in zip(self.pconvs, pooled))
        fused = self.flatten_linear(F.relu(fused).flatten(1)) + position
        fused = self.updims(fused)
        counts = [len(b) for b in boxes]
        return list(torch.split(fused, counts))


class RegionEncoder(nn.Module):
    """`model.region_encoder`: CLIP levels + normalised xyxy boxes → one LLM embedding per box."""

    def __init__(self, sizes: RegionSizes = RegionSizes()):
        super().__init__()
        self.sizes = sizes
        self.mlvl_fuse = MlvlFuse(sizes)
        self.roi_align = MlvlRoiExtractor(sizes)

    def forward(self, levels: list[torch.Tensor], boxes: list[torch.Tensor], dtype: torch.dtype) -> list[torch.Tensor]:
        """`levels`: per level (B, N, C) patch tokens of a square grid; `boxes`: per image (n, 4)."""
        side = round(levels[0].shape[1] ** 0.5)
        maps = []
        for level, tokens in enumerate(levels):
            batch, _, channels = tokens.shape
            grid = tokens.reshape(batch, side, side, channels).permute(0, 3, 1, 2)
            scale = 2 ** (len(levels) - 1 - level)
            resized = F.interpolate(grid.float(), size=(side * scale, side * scale), mode="bilinear", align_corners=True)
            maps.append(resized.to(dtype))
        return self.roi_align(self.mlvl_fuse(maps), boxes)


def roi_align(features: torch.Tensor, rois: torch.Tensor, output_size: int, spatial_scale: float,
              sampling_ratio: int) -> torch.Tensor:
    """mmcv RoIAlign (aligned=True, pool_mode="avg"): (B, C, H, W) features, (N, 5) rois [image, x1, y1, x2, y2]
    in input pixels → (N, C, output_size, output_size).

    Per bin, the mean of sampling_ratio² bilinear samples at y = y1·s − 0.5 + p·h + (i + 0.5)·h/sampling_ratio
    (h = bin height, likewise x); a sample outside [−1, H] × [−1, W] counts 0, one in [−1, 0] is clamped to 0
    and one past the last row/column takes that row/column (mmcv `bilinear_interpolate`). The samples of one
    box form a separable grid, so each box is an (S×H)·feature·(W×S) product with S = output_size·sampling_ratio.
    """
    _, _, height, width = features.shape
    images = rois[:, 0].long()
    starts_x, starts_y = rois[:, 1] * spatial_scale - 0.5, rois[:, 2] * spatial_scale - 0.5
    bins_x = (rois[:, 3] * spatial_scale - 0.5 - starts_x) / output_size
    bins_y = (rois[:, 4] * spatial_scale - 0.5 - starts_y) / output_size
    cells = torch.arange(output_size, device=features.device, dtype=features.dtype).repeat_interleave(sampling_ratio)
    offsets = (torch.arange(sampling_ratio, device=features.device, dtype=features.dtype) + 0.5).repeat(output_size)
    ys = starts_y[:, None] + cells[None] * bins_y[:, None] + offsets[None] * bins_y[:, None] / sampling_ratio
    xs = starts_x[:, None] + cells[None] * bins_x[:, None] + offsets[None] * bins_x[:, None] / sampling_ratio
    weights_y, weights_x = _interpolation_weights(ys, height), _interpolation_weights(xs, width)
    samples = torch.einsum("nsh,nchw,ntw->ncst", weights_y, features[images], weights_x)
    return F.avg_pool2d(samples, sampling_ratio)


def _interpolation_weights(coords: torch.Tensor, size: int) -> torch.Tensor:
    """(N, S) sample coordinates → (N, S, size) bilinear weights (mmcv's clamping and zero outside)."""
    valid = (coords >= -1.0) & (coords <= size)
    coords = coords.clamp(min=0)
    low = coords.floor().long()
    at_edge = low >= size - 1
    low = torch.where(at_edge, torch.full_like(low, size - 1), low)
    high = torch.where(at_edge, low, low + 1)
    coords = torch.where(at_edge, low.to(coords.dtype), coords)
    frac = coords - low.to(coords.dtype)
    weights = torch.zeros(*coords.shape, size, dtype=coords.dtype, device=coords.device)
    weights.scatter_add_(-1, low[..., None], ((1 - frac) * valid)[..., None])
    weights.scatter_add_(-1, high[..., None], (frac * valid)[..., None])
    return weights
