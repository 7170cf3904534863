"""The ``soundstage`` command (``cli.main``): a client of the job system, local or ``--server``."""
