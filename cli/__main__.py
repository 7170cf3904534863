"""``python -m cli``: the ``soundstage`` command."""

from cli.main import run

run()
