"""unet_lib: the tested library behind the course on U-Net segmentation of brain tumours.

Modules:
    models      ClassicUNet, ImprovedUNet, AttentionUNet, build_model
    data        BraTS 2020 readers (Kaggle slices, NIfTI volumes) and the phantom
    metrics     Dice, precision, recall; BraTS regions; an accumulator over a data loader
    train       TrainConfig (the slides' settings), fit, evaluate, predict
    checkpoint  atomic checkpoints, load_model
    viz         the course's pictures (matplotlib)
"""

__version__ = "0.1.0"
