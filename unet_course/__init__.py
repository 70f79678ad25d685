"""unet_course: the course around the library — what its notebooks share.

Modules:
    session      setup(): the scale, the data, the split, and the cache of trained models
    settings     the scale, data and course home: notebook values, environment overrides
    examples     which slices a chapter shows, and their names
    labs/        the chapters' questions, self-checked with hints (``labs.reveal``), one module
                 per topic: sizes, schedule, prediction, evaluation, attention_maps, calibration
    exercises/   the code a student writes, checked against unet_lib: blocks (chapters 1-3),
                 forward, train_step, scores, cleanup, and module_checks (how modules compare)
    checking     what labs and exercises share: comparing an answer, hints, "not yet"
    viz          the pictures (matplotlib), in the lettering of :mod:`style`; it gathers:
    frames       one picture's pieces: styles, grey modalities and the head's window, ticks,
                 the threshold slider's frames and how it writes a score
    mask_colours the masks' palettes (the slides' RGB, or colour-blind), and how colours mix
    attention_pictures  chapter 8: the gates' α over a faint FLAIR, the tumour outlined
    comparisons  several models in one figure: learning curves, predictions side by side
    diagrams     the block and gate diagrams of chapters 2 and 3
    gallery      the phantom's figure (data card)
    bundles      the reference results of the slides' configuration, read for the book
    style        the figures' lettering (12-pt text), set when unet_course is imported
    slider       pre-rendered image sliders that work without a kernel
    confusion    chapter 6: TP, FP and FN as pixels of one slice
    outline_pictures  chapter 7: where an HD95 comes from (distance curves, outline slider)
    chance_pictures   chapter 7: what the sign-flip test counts
    patient_pictures  chapter 7: each patient's scores under each model, paired
    calibration_pictures  chapter 9: reliability diagrams (do the probabilities mean chances?)
    notebook     values quoted in the book's text (glue, counted), tables shown (show_table)

Importing the package sets matplotlib's font sizes to :data:`style.FONT_SIZES` for the rest of
the process, so that every chapter's figures, those its cells draw with ``plt`` included, read
alike in the book whichever of these modules the chapter imports.

The library, :mod:`unet_lib`, needs none of this (nor matplotlib): install the course with
``pip install -e ".[course]"``. A chapter starts with::

    import unet_course as course
    setup = course.setup(SCALE)
"""

from . import style
from .examples import (Showcase, hardest_slice, holes_reading, showcase, slice_name,
                       slice_scores, tumour_slices, what_went_wrong)
from .notebook import counted, glue, show_markdown, show_table
from .session import (DATA_VARIABLE, HOME_VARIABLE, SCALE_VARIABLE, CourseSetup, TrainedModel,
                      course_home, resolve_scale, setup)

__all__ = ["CourseSetup", "DATA_VARIABLE", "HOME_VARIABLE", "SCALE_VARIABLE", "Showcase",
           "TrainedModel", "counted", "course_home", "glue", "hardest_slice", "holes_reading",
           "resolve_scale", "setup", "show_markdown", "show_table", "showcase", "slice_name",
           "slice_scores", "tumour_slices", "what_went_wrong"]

style.apply()  # the course's lettering for every figure drawn from here on (style.py says why)
