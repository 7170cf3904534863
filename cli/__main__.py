"""``python -m cli``: the ``soundstage`` command."""

import sys

from cli.main import main

sys.exit(main())
