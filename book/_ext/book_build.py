"""A Sphinx extension that tells the notebooks the book's build runs them.

The build executes every chapter in a kernel started from this process, which inherits its
environment: ``unet_course.glue`` then stores the values the text quotes for the page
(``myst_nb.glue``) instead of printing them as it does in JupyterLab or Colab.
"""

import os

#: the name unet_course.notebook.BOOK_BUILD_VARIABLE reads (tests/test_course.py checks)
BOOK_BUILD_VARIABLE = "UNET_COURSE_BOOK_BUILD"


def setup(app):
    os.environ[BOOK_BUILD_VARIABLE] = "1"
    return {"parallel_read_safe": True, "parallel_write_safe": True}
