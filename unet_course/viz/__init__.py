"""The course's pictures, in plain matplotlib: every figure a chapter draws, and the static
sliders that work without a kernel. Chapters call them as ``viz.<name>`` (the names below);
the pictures of one chapter's topic are in their own module.

Modules:
    slices       one slice: its modalities, a prediction beside the truth (one model or several
                 side by side), the masks' colour key
    curves       learning curves (one run, several models; their sentences: unet_course.readings)
    diagrams     the whole U, the Improved U-Net's block and the attention gate, drawn from
                 the modules themselves
    attention    chapter 8: the gates' α over a faint FLAIR, the tumour outlined
    confusion    chapter 6: TP, FP and FN as pixels of one slice
    outlines     chapter 7: where an HD95 comes from (distance curves, outline slider)
    chance       chapter 7: what the sign-flip test counts
    patients     chapter 7: each patient's scores under each model, paired
    calibration  chapter 9: reliability diagrams (do the probabilities mean chances?)
    gallery      the phantom's figure (data card)
    frames       what pictures share: styles, grey modalities and the head's window, ticks,
                 the threshold slider's frames and how it writes a score
    mask_colours the masks' palettes (the slides' RGB, or colour-blind), and how colours mix
    slider       pre-rendered image sliders that work without a kernel
    style        the figures' lettering (12-pt text), set when unet_course is imported
"""

from .attention import attention_overlay, attention_slider, head_values, show_attention, stretched
from .curves import plot_histories, plot_history, plot_training
from .diagrams import draw_block, draw_gate, draw_unet
from .frames import (SLIDER_THRESHOLDS, grey_picture, mask_to_rgb, model_style, score_axis_floor,
                     threshold_slider)
from .mask_colours import channel_colours, use_palette
from .slices import compare_models, show_colour_key, show_modalities, show_prediction

__all__ = ["SLIDER_THRESHOLDS", "attention_overlay", "attention_slider", "channel_colours",
           "compare_models", "draw_block", "draw_gate", "draw_unet", "grey_picture",
           "head_values", "mask_to_rgb", "model_style", "plot_histories", "plot_history",
           "plot_training", "score_axis_floor", "show_attention", "show_colour_key",
           "show_modalities", "show_prediction", "stretched", "threshold_slider", "use_palette"]
