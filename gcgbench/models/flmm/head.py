"""F-LMM's trainable parts in plain torch, with the parameter names of the official checkpoint.

Re-implemented from Wu et al., "F-LMM: Grounding Frozen Large Multimodal Models" (arXiv 2406.05821), code
`wusize/F-LMM` @ 47d3c2a6, and mmsegmentation's UNet (`mmseg/models/backbones/unet.py`, `BasicConvBlock`,
`InterpConv`, `mmseg/models/utils/up_conv_block.py::UpConvBlock`) with mmcv's `ConvModule` (conv → norm →
activation; the conv has no bias when a norm follows; a GroupNorm is registered as `gn`).

`FlmmHeads` holds what `FrozenLlavaSAM` (`flmm/models/frozen_llava.py`) trains, under its attribute names, so
its `state_dict()` keys are the official ones:

    mask_head.encoder.0.0.convs.0.conv.weight, mask_head.encoder.0.0.convs.0.gn.{weight,bias}, …
    mask_head.encoder.{1,2,3}.1.convs.{0,1}.…          (encoder.i.0 is the MaxPool2d, no parameters)
    mask_head.decoder.{0,1,2}.conv_block.convs.{0,1}.…
    mask_head.decoder.{0,1,2}.upsample.interp_upsample.1.{conv.weight,gn.weight,gn.bias}
    mask_head.conv_seg.{weight,bias}
    sam.model.prompt_encoder.…, sam.model.mask_decoder.…   (`SAMWrapper.model`; the frozen image encoder
                                                            is left out of the F-LMM checkpoint)
    text_proj.{weight,bias}, text_layer_weights

Mask head (`flmm/models/mask_head/mask_decoder.py::UNetHead`, config `configs/llava/…_png.py`): input x of
shape (N, C = layers·heads, h, w), the word→image attention maps of N phrases (C = 2·layers·heads for
LLaVA-NeXT, `configs/llava_next/…_png.py` in_channels=2048; `gcgbench.models.flmm.next`).
    x ← x / max(Σ_{spatial} x, 1e-12)                         (normalize_input, per channel)
    x ← bilinear(x, scale_factor = max(1, 64 / max(h, w)))    (upsample_input = 64; 24 → 64)
    x ← zero-pad bottom/right to a multiple of 2^(stages−1); UNet; crop back; conv_seg → (N, 1, H', W') logits
UNet: 4 stages, base 64 channels (64·2^i), 2 convs (3×3) per block, MaxPool downsampling, GroupNorm(1 group),
ReLU; decoder stage i: InterpConv (×2 bilinear upsample, align_corners=False, computed in float32 as F-LMM's
patched `Upsample.forward`, then a 1×1 ConvModule to the skip width), concat [skip, up], 2 convs.

SAM refiner (`flmm/models/mask_head/mask_refiner.py::SAMWrapper`, `use_text=use_mask=use_box=True`,
`multimask_output=False`): per phrase, prompts = the box of sigmoid(coarse) > 0.5 at image size
(`mask2box` → [x0, y0, x1+1, y1+1]; the whole image when empty), the coarse logits resized to SAM's input
size, padded with min(−1, min logit) to the square input and resized to the prompt mask size (256²), and the
phrase's projected hidden states appended to the sparse prompt embeddings; returns SAM's logits at image size.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from gcgbench.grounding.sam_refine import import_segment_anything

# configs/llava/frozen_llava_1_5_vicuna_7b_unet_sam_l_refcoco_png.py (`unet = dict(type=UNetHead, ...)`)
UNET_BASE_CHANNELS = 64
UNET_NUM_STAGES = 4
UNET_UPSAMPLE_INPUT = 64


class ConvModule(nn.Module):
    """mmcv `ConvModule(conv_cfg=None, norm_cfg=GroupNorm(num_groups=1), act_cfg=ReLU)`: conv (no bias) → gn → relu."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, dilation: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                              dilation=dilation, bias=False)
        self.gn = nn.GroupNorm(num_groups=1, num_channels=out_channels)
        self.activate = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activate(self.gn(self.conv(x)))


class BasicConvBlock(nn.Module):
    """mmseg `BasicConvBlock`: `num_convs` 3×3 ConvModules (stride and dilation 1 in F-LMM's config)."""

    def __init__(self, in_channels: int, out_channels: int, num_convs: int = 2, dilation: int = 1):
        super().__init__()
        self.convs = nn.Sequential(*[
            ConvModule(in_channels if i == 0 else out_channels, out_channels, 3,
                       dilation=1 if i == 0 else dilation, padding=1 if i == 0 else dilation)
            for i in range(num_convs)
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.convs(x)


class Upsample(nn.Module):
    """mmseg `Upsample(scale_factor=2, mode='bilinear', align_corners=False)` with F-LMM's
    `upsample_forward_func`: size = int(t · 2) per side, interpolated in float32, cast back."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = [int(t * 2) for t in x.shape[-2:]]
        return F.interpolate(x.float(), size=size, mode="bilinear", align_corners=False).to(x.dtype)


class InterpConv(nn.Module):
    """mmseg `InterpConv` (conv_first=False): `interp_upsample = Sequential(Upsample, ConvModule 1×1)`."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.interp_upsample = nn.Sequential(Upsample(), ConvModule(in_channels, out_channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.interp_upsample(x)


class UpConvBlock(nn.Module):
    """mmseg `UpConvBlock`: upsample the deeper map to the skip width, concat [skip, up], a BasicConvBlock."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, num_convs: int = 2):
        super().__init__()
        self.conv_block = BasicConvBlock(2 * skip_channels, out_channels, num_convs)
        self.upsample = InterpConv(in_channels, skip_channels)

    def forward(self, skip: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.conv_block(torch.cat([skip, self.upsample(x)], dim=1))


class UNetHead(nn.Module):
    """F-LMM's `UNetHead(mmseg UNet)`: strides 1, MaxPool downsampling after every stage but the first."""

    def __init__(self, in_channels: int, base_channels: int = UNET_BASE_CHANNELS, num_stages: int = UNET_NUM_STAGES,
                 upsample_input: int | None = UNET_UPSAMPLE_INPUT, normalize_input: bool = True):
        super().__init__()
        self.num_stages = num_stages
        self.base_channels = base_channels
        self.upsample_input = upsample_input
        self.normalize_input = normalize_input
        self.encoder = nn.ModuleList()
        self.decoder = nn.ModuleList()
        channels = in_channels
        for i in range(num_stages):
            block: list[nn.Module] = []
            if i != 0:
                block.append(nn.MaxPool2d(kernel_size=2))
                self.decoder.append(UpConvBlock(base_channels * 2 ** i, base_channels * 2 ** (i - 1),
                                                base_channels * 2 ** (i - 1)))
            block.append(BasicConvBlock(channels, base_channels * 2 ** i))
            self.encoder.append(nn.Sequential(*block))
            channels = base_channels * 2 ** i
        self.conv_seg = nn.Conv2d(base_channels, 1, kernel_size=1)

    @property
    def dtype(self) -> torch.dtype:
        return self.conv_seg.weight.dtype

    def unet(self, x: torch.Tensor) -> torch.Tensor:
        """mmseg `UNet.forward(x)[-1]`: the last decoder output (base_channels wide, input resolution)."""
        skips = []
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
        for i in reversed(range(len(self.decoder))):
            x = self.decoder[i](skips[i], x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w) attention maps → (N, 1, h', w') mask logits, h' = h·max(1, 64/max(h, w))."""
        h, w = x.shape[-2:]
        if self.normalize_input:
            x = x / x.sum((-2, -1), keepdim=True).clamp(min=1e-12)
        if self.upsample_input is not None:
            scale_factor = max(1.0, self.upsample_input / max(h, w))
            x = F.interpolate(x.float(), scale_factor=scale_factor, mode="bilinear").to(x.dtype)
            h, w = x.shape[-2:]
        dividend = 2 ** (self.num_stages - 1)
        padded = x.new_zeros(*x.shape[:2], math.ceil(h / dividend) * dividend, math.ceil(w / dividend) * dividend)
        padded[..., :h, :w] = x
        return self.conv_seg(self.unet(padded)[..., :h, :w])


def mask_to_box(mask: np.ndarray) -> np.ndarray:
    """`mask_refiner.py::mask2box`: [x0, y0, x1 + 1, y1 + 1] of the set pixels (the +1 avoids x0 == x1)."""
    ys, xs = np.where(mask > 0)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])


class SamPromptRefiner(nn.Module):
    """`SAMWrapper` at inference: `model` is a segment-anything `Sam` (ViT-L in F-LMM)."""

    def __init__(self, sam: nn.Module):
        super().__init__()
        self.model = sam

        import_segment_anything()
        from segment_anything.utils.transforms import ResizeLongestSide

        self.transform = ResizeLongestSide(sam.image_encoder.img_size)

    @torch.no_grad()
    def encode_image(self, image: np.ndarray) -> tuple[torch.Tensor, tuple[int, int], tuple[int, int]]:
        """H×W×3 uint8 RGB → (image embedding, original (H, W), resized input (h, w)), as `SAMWrapper.encode_image`."""
        resized = self.transform.apply_image(image)
        device = self.model.device
        pixels = torch.as_tensor(resized, device=device).permute(2, 0, 1).contiguous()[None]
        features = self.model.image_encoder(self.model.preprocess(pixels))
        return features, (int(image.shape[0]), int(image.shape[1])), (int(pixels.shape[-2]), int(pixels.shape[-1]))

    def prompt_masks(self, coarse: torch.Tensor, input_size: tuple[int, int]) -> torch.Tensor:
        """`generate_prompt_masks`: (N, h, w) logits → (N, 1, m, m), m = prompt encoder mask size (256)."""
        pad_value = min(-1.0, coarse.min().item())
        masks = F.interpolate(coarse[:, None].float(), size=input_size, mode="bilinear").to(coarse.dtype)
        side = self.model.image_encoder.img_size
        masks = F.pad(masks, (0, side - masks.shape[-1], 0, side - masks.shape[-2]), value=pad_value)
        size = tuple(self.model.prompt_encoder.mask_input_size)
        return F.interpolate(masks.float(), size=size, mode="bilinear").to(masks.dtype)

    @torch.no_grad()
    def forward(self, image: np.ndarray, coarse: torch.Tensor, text_embeds: Sequence[torch.Tensor]) -> torch.Tensor:
        """(N, h, w) coarse logits of the unpadded image + N (n_i, C) text embeddings → (N, H, W) SAM logits."""
        embedding, original_size, input_size = self.encode_image(image)
        prompt_masks = self.prompt_masks(coarse, input_size)
        binary = F.interpolate(coarse[None].float().sigmoid(), size=original_size, mode="bilinear")[0] > 0.5
        device = self.model.device
        outputs = []
        for prompt_mask, mask, text_embed in zip(prompt_masks, binary, text_embeds):
            if mask.any():
                box = mask_to_box(mask.cpu().numpy())
            else:
                box = np.array([0.0, 0.0, original_size[1], original_size[0]])
            box = self.transform.apply_boxes(box, original_size)
            box_t = torch.as_tensor(box, dtype=torch.float32, device=device)[None, :]      # (1, 1, 4)
            sparse, dense = self.model.prompt_encoder(points=None, boxes=box_t,
                                                      masks=prompt_mask.view(1, 1, *prompt_mask.shape[-2:]))
            sparse = torch.cat([sparse.to(dense), text_embed[None].to(dense)], dim=1)
            low_res, _ = self.model.mask_decoder(
                image_embeddings=embedding, image_pe=self.model.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=False)
            outputs.append(self.model.postprocess_masks(low_res, input_size, original_size)[0, 0])
        return torch.stack(outputs) if outputs else torch.zeros((0,) + original_size, device=device)


class FlmmHeads(nn.Module):
    """Everything `FrozenLlavaSAM` / `FrozenLlavaNextSAM` adds to the frozen LMM, named as in its state dict.

    The mask head reads layers·heads channels per attention grid: one grid for LLaVA-1.5, two for LLaVA-NeXT
    (base image + high-resolution crops; `frozen_llava_next.py`: in_channels = heads · layers · 2).
    """

    def __init__(self, num_layers: int, num_heads: int, hidden_size: int, sam: nn.Module, attention_grids: int = 1):
        super().__init__()
        self.mask_head = UNetHead(in_channels=num_layers * num_heads * attention_grids)
        self.sam = SamPromptRefiner(sam)
        self.text_proj = nn.Linear(hidden_size, sam.prompt_encoder.embed_dim)
        self.text_layer_weights = nn.Parameter(torch.ones(num_layers))

    def checkpoint_state(self) -> dict[str, Any]:
        """The state dict an F-LMM checkpoint holds: everything but SAM's frozen image encoder."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith(FROZEN_SAM_PREFIX)}

    def layer_weights(self) -> torch.Tensor:
        """`get_text_layer_weights`: softmax over the per-layer weights."""
        return torch.softmax(self.text_layer_weights, dim=0)


FROZEN_SAM_PREFIX = "sam.model.image_encoder."
