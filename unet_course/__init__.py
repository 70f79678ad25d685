"""unet_course: the course around the library — what its notebooks share.

Modules:
    session      setup(): the scale, the data, the split, and the cache of trained models
    settings     the scale, data and course home: notebook values, environment overrides
    examples     which slices a chapter shows, their names and Dice per region
    readings/    what the book's text reads off this build's results, in words, one module per
                 kind of result: slices (5), curves and overfitting (4), scores (6),
                 patients and outlines (7), chance (7, 9), gates (8), calibration (9)
    labs/        the chapters' questions, self-checked with hints (``labs.reveal``), one module
                 per topic: sizes, schedule, prediction, evaluation, attention_maps, calibration
    exercises/   the code a student writes, checked against unet_lib: blocks (chapters 1-3),
                 forward, train_step, scores, cleanup, and module_checks (how modules compare)
    checking     what labs and exercises share: comparing an answer, hints, "not yet"
    viz/         the pictures (matplotlib) and the static sliders, in the lettering of its
                 ``style``; chapters call them as ``viz.<name>``, one module per kind of
                 picture: slices, curves, diagrams, attention (8), confusion (6), outlines,
                 chance and patients (7), calibration (9), gallery (the data card); what they
                 share: frames, mask_colours, slider, style
    bundles      the reference results of the slides' configuration, read for the book
    notebook     values quoted in the book's text (glue, counted), tables shown (show_table)

Importing the package sets matplotlib's font sizes to :data:`viz.style.FONT_SIZES` for the rest of
the process, so that every chapter's figures, those its cells draw with ``plt`` included, read
alike in the book whichever of these modules the chapter imports.

The library, :mod:`unet_lib`, needs none of this (nor matplotlib): install the course with
``pip install -e ".[course]"``. A chapter starts with::

    import unet_course as course
    setup = course.setup(SCALE)
"""

from .viz import style
from .examples import Showcase, hardest_slice, showcase, slice_name, slice_scores, tumour_slices
from .notebook import counted, glue, show_markdown, show_table
from .session import (DATA_VARIABLE, HOME_VARIABLE, SCALE_VARIABLE, CourseSetup, TrainedModel,
                      course_home, resolve_scale, setup)

__all__ = ["CourseSetup", "DATA_VARIABLE", "HOME_VARIABLE", "SCALE_VARIABLE", "Showcase",
           "TrainedModel", "counted", "course_home", "glue", "hardest_slice",
           "resolve_scale", "setup", "show_markdown", "show_table", "showcase", "slice_name",
           "slice_scores", "tumour_slices"]

style.apply()  # the course's lettering for every figure drawn from here on (style.py says why)
