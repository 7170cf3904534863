"""The job kinds' audio and music code.

Importing the package tunes two things about memory for arrays of many megabytes, each unless
the operator has set it:

- numpy's transparent-huge-page advice is turned off (``NUMPY_MADVISE_HUGEPAGE``): on kernels
  whose huge-page defrag setting is ``madvise`` (a common default), each fresh array then waits
  for the kernel to compact memory, and after another process has churned the page cache (an
  upload, an ffmpeg decode) a 3-minute master spent over three seconds of system time in page
  faults instead of 0.2 s.
- glibc's allocator keeps freed memory for the next array (``GLIBC_TUNABLES`` or ``MALLOC_*``
  variables left alone): by default every array over 32 MB is mapped fresh and returned on
  free, so each one's first touch faults in its pages again, about 130 000 page faults per
  3-minute master. Large blocks now come from the heap, and up to ``KEEP_FREED_BYTES`` of free
  memory at its top stays mapped: a master faults a few thousand times after the first.
"""

from __future__ import annotations

import ctypes
import os
import sys

KEEP_FREED_BYTES = 1 << 30
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc's mallopt parameters (malloc.h)


def _no_huge_page_advice() -> None:
    if "NUMPY_MADVISE_HUGEPAGE" in os.environ:
        return
    os.environ["NUMPY_MADVISE_HUGEPAGE"] = "0"  # read when numpy is first imported
    numpy = sys.modules.get("numpy")
    if numpy is not None:  # imported already: its switch, where this numpy has it
        setter = getattr(getattr(numpy, "_core", None), "multiarray", None)
        setter = getattr(setter, "_set_madvise_hugepage", None)
        if setter is not None:
            setter(False)


def _keep_freed_memory() -> None:
    if not sys.platform.startswith("linux") or "GLIBC_TUNABLES" in os.environ:
        return
    if any(name.startswith("MALLOC_") for name in os.environ):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError):
        return
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    mallopt(_M_MMAP_MAX, 0)
    mallopt(_M_TRIM_THRESHOLD, KEEP_FREED_BYTES)


_no_huge_page_advice()
_keep_freed_memory()
