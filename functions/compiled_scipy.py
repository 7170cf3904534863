"""One of scipy's compiled modules, loaded on its own: without ``import scipy.signal`` or
``import scipy.fft``, whose imports alone cost more than the work a cold command needs them for
(see ``functions.loudness`` and ``functions.real_fft``).

Each module is loaded once per process, under a lock: two threads that load the same extension
at the same moment can each see it half initialised (the first job to filter on two threads
failed that way).
"""

from __future__ import annotations

import functools
import glob
import importlib.machinery
import importlib.util
import os
import threading
from types import ModuleType

_LOCK = threading.Lock()


def compiled_module(path: str, name: str, *attributes: str) -> ModuleType | None:
    """The extension at ``path`` (relative to scipy's folder, without its platform suffix,
    e.g. ``"signal/_sosfilt"``) as module ``name``, or None when this scipy release has no such
    file or it lacks one of ``attributes`` (the caller then falls back to scipy's public API)."""
    with _LOCK:
        return _load(path, name, attributes)


@functools.cache
def _load(path: str, name: str, attributes: tuple[str, ...]) -> ModuleType | None:
    spec = importlib.util.find_spec("scipy")
    found = glob.glob(os.path.join(os.path.dirname(spec.origin), *path.split("/")) + ".*")
    try:
        loader = importlib.machinery.ExtensionFileLoader(name, found[0])
        module = importlib.util.module_from_spec(importlib.util.spec_from_loader(name, loader))
        loader.exec_module(module)
    except (IndexError, ImportError):
        return None
    return module if all(hasattr(module, a) for a in attributes) else None
