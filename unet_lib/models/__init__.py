"""The U-Net of the course, its three presets, and the ablations of the Improved U-Net.

* :class:`UNet` (:mod:`.unet`): one configurable U-Net; :class:`DecoderLevel` and the other
  blocks are in :mod:`.layers`.
* :func:`build_model` and :data:`PRESETS` (:mod:`.presets`): ``"classic"``, ``"improved"``,
  ``"attention"``; :data:`MODELS` maps each name to its factory (:func:`ClassicUNet`, ...).
* :data:`IMPROVEMENTS` (:mod:`.presets`): the five changes by name; :func:`improved_without`,
  :func:`improvement_table` (:mod:`.ablation`): switched on in turn or off one at a time.
"""

from __future__ import annotations

from .ablation import (classic_with, cumulative_improvements, improved_without, improvement_off,
                       improvement_table)
from .layers import (AttentionGate, DecoderLevel, DepthwiseConv2d, DoubleConv,
                     InvertedBottleneckBlock, SeparableConv2d, set_depthwise_nchw)
from .presets import (IMPROVEMENTS, MODELS, PRESETS, AttentionUNet, ClassicUNet, ImprovedUNet,
                      build_model, preset_of)
from .unet import MIN_SIZE, UNet, count_parameters

__all__ = ["AttentionGate", "AttentionUNet", "ClassicUNet", "DecoderLevel", "DepthwiseConv2d",
           "DoubleConv",
           "IMPROVEMENTS", "ImprovedUNet", "InvertedBottleneckBlock", "MIN_SIZE", "MODELS",
           "PRESETS", "SeparableConv2d", "UNet", "build_model", "classic_with",
           "count_parameters", "cumulative_improvements", "improved_without", "improvement_off",
           "improvement_table", "preset_of", "set_depthwise_nchw"]
