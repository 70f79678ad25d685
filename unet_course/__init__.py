"""unet_course: the course around the library — what its notebooks share.

Modules:
    session   setup(): the scale, the data, the split, and the cache of trained models
    settings  the scale, data and course home: notebook values, environment overrides
    examples  which slices a chapter shows, and their names
    labs      the exercises' self-checks
    viz       the pictures (matplotlib), in the lettering of :mod:`style`
    slider    pre-rendered image sliders that work without a kernel
    notebook  values quoted in the book's text (glue)

The library, :mod:`unet_lib`, needs none of this (nor matplotlib): install the course with
``pip install -e ".[course]"``. A chapter starts with::

    import unet_course as course
    setup = course.setup(SCALE)
"""

from .examples import (hardest_slice, slice_name, slice_scores, tumour_slices,
                       what_went_wrong)
from .notebook import glue
from .session import (DATA_VARIABLE, HOME_VARIABLE, SCALE_VARIABLE, CourseSetup, TrainedModel,
                      course_home, resolve_scale, setup)

__all__ = ["CourseSetup", "DATA_VARIABLE", "HOME_VARIABLE", "SCALE_VARIABLE", "TrainedModel",
           "course_home", "glue", "hardest_slice", "resolve_scale", "setup", "slice_name",
           "slice_scores", "tumour_slices", "what_went_wrong"]
