"""The job kinds' audio and music code.

Importing the package turns off numpy's transparent-huge-page advice for large arrays (unless
``NUMPY_MADVISE_HUGEPAGE`` is set): on kernels whose huge-page defrag setting is ``madvise``
(a common default), each fresh array of many megabytes then waits for the kernel to compact
memory, and after another process has churned the page cache (an upload, an ffmpeg decode) a
3-minute master spent over three seconds of system time in page faults instead of 0.2 s.
"""

from __future__ import annotations

import os
import sys

if "NUMPY_MADVISE_HUGEPAGE" not in os.environ:
    os.environ["NUMPY_MADVISE_HUGEPAGE"] = "0"  # read when numpy is first imported
    numpy = sys.modules.get("numpy")
    if numpy is not None:  # imported already: its switch, where this numpy has it
        setter = getattr(getattr(numpy, "_core", None), "multiarray", None)
        setter = getattr(setter, "_set_madvise_hugepage", None)
        if setter is not None:
            setter(False)
