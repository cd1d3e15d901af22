"""Helpers of the example gallery, named by string in conf.py (sphinx-gallery
imports them; functions in conf.py itself would make the configuration
unpicklable, which Sphinx warns about)."""

import os
import tempfile


def quick_mode_argv(gallery_conf, script_vars):
    """Command line of each gallery example: its few-second ``--quick`` mode.

    The training-curve example writes its PNG to a temporary folder rather
    than into the source tree; the gallery shows the figure it leaves open.
    """
    argv = ["--quick"]
    if os.path.basename(script_vars["src_file"]) == "plot_training_curve.py":
        argv += ["--output", os.path.join(tempfile.mkdtemp(), "training_curve.png")]
    return argv
