"""One module per job kind, and ``KINDS``: the index of every kind this product serves.

Each pipeline module defines ``KIND = JobKind(...)`` (its params model, stages, estimates and
``run``); this list is the one place that says which kinds exist. The composition roots (the app
factory, the worker, the CLI, modal_app.py) hand it to ``open_services``; nothing registers
itself on import.
"""

from functions.pipelines import (
    analyze,
    beat,
    blend,
    convert,
    hum,
    mashup,
    master,
    mix,
    stems,
    video,
)
from shared.registry import Kinds

KINDS = Kinds(
    [
        analyze.KIND,
        beat.KIND,
        blend.KIND,
        convert.KIND,
        hum.KIND,
        mashup.KIND,
        master.KIND,
        mix.KIND,
        stems.KIND,
        video.KIND,
    ]
)
