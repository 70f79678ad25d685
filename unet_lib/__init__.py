"""unet_lib: the tested library behind the course on U-Net segmentation of brain tumours.

The main modules (each imported by name, ``from unet_lib.inference import evaluate``; the
README's layout lists every one):
    models      UNet with the course's presets (classic, improved, attention), build_model,
                the Improved U-Net's five changes and their ablation
    data        BraTS 2020 readers (Kaggle slices, NIfTI volumes, packed copy), the phantom
    config      TrainConfig: the slides' settings, checked before any work
    recipe/run  one run recipe (data, split, settings, model) → a run folder; train_run
    results     a run's held-out test scores, kept beside its checkpoints
    train       fit: the training loop (history: its per-epoch records; training_step: one
                step); resume: continuing a run safely
    inference   evaluate, predict, threshold_sweep: scores over all pixels of the slices
    metrics     Dice, precision, recall; BraTS regions; the best threshold of a sweep
    patients    per-patient 3-D scores and HD95 (outlines), as BraTS ranks; patient_volume:
                one patient's volumes to look at
    comparison  paired tests between two models' patients (bootstrap, sign flips)
    calibration reliability diagrams and calibration error; temperature: temperature scaling
    attention   what the attention gates pass inside and outside the tumour
    segment     BraTS label maps for new cases (postprocess: keep the largest piece)
    checkpoint  checkpoints that load no code, written atomically
    reference   the slides' full configuration as one command and its results bundle
    bench       speed beside MONAI's peers (variants: a preset run another way)
    cli         the unet-lib command

The course around it (setup, labs, pictures) is the separate package ``unet_course``.
"""

__version__ = "0.2.0"
