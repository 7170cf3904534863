"""One ``soundstage <kind>`` command per job kind, generated from the kind registry.

Files are positional, as many as the kind takes (``file:<id>`` and ``job:<id>/<output>`` name
library files and earlier jobs' outputs instead of paths). Every field of the kind's params
model is a flag (``cli.param_flags``). ``-o`` saves the outputs, an unset output format follows
its extension, and after the job the kind's own ``summarize`` prints the result (``--json``:
the result as JSON on stdout). Adding a kind to the index adds its command here, with no code.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cli.console import console, error
from cli.job_client import add_job_args, run_job_cli, save_outputs
from cli.param_flags import ParamFlags, field_choices
from shared.registry import JobKind, Kinds, saved_lines

# Params fields that pick the written file's format: when unset, ``-o``'s extension decides.
FORMAT_FIELDS = ("output_format", "format")


def add_kind_commands(sub: argparse._SubParsersAction, kinds: Kinds) -> None:
    """Add a command for every kind in ``kinds`` to the ``soundstage`` parser."""
    for kind in kinds:
        first_line = (kind.description or kind.name).rstrip(".")
        p = sub.add_parser(kind.name, help=first_line[:1].lower() + first_line[1:])
        p.description = kind.description
        _add_file_args(p, kind)
        flags = ParamFlags(kind.params)
        flags.add_to(p)
        p.add_argument(
            "-o",
            "--out",
            type=Path,
            default=None,
            metavar="OUT",
            help="a file for the main output, or a folder for every output "
            "(default: the main output here, under its own name)",
        )
        add_job_args(p)
        p.set_defaults(func=_command(kind, flags))


def _add_file_args(p: argparse.ArgumentParser, kind: JobKind) -> None:
    lo, hi = kind.min_files, kind.max_files
    if hi == 0:
        return
    what = "a path, file:<id> (a library file) or job:<id>/<output> (an earlier job's output)"
    if lo == hi == 1:
        p.add_argument("file", help=what)
    elif lo == hi:
        p.add_argument("file", nargs=hi, metavar="FILE", help=f"{hi} files: each {what}")
    else:
        p.add_argument(
            "file", nargs="+" if lo else "*", metavar="FILE", help=f"{lo}-{hi} files: each {what}"
        )


def _command(kind: JobKind, flags: ParamFlags):
    def run(args: argparse.Namespace) -> int:
        given = getattr(args, "file", None) or []
        given = given if isinstance(given, list) else [given]
        files = [Path(f) for f in given]
        params = flags.values(args, n_files=len(files))
        _format_from_out(kind, params, args.out)
        job = run_job_cli(args, kind.name, files, params)
        saved = save_outputs(args, job, args.out, kind.main_output)
        result = job.get("result") or {}
        if args.json:
            sys.stdout.write(json.dumps(result, indent=2) + "\n")
        elif kind.summarize is not None:
            console.print(kind.summarize(result, [str(f) for f in given], saved))
        else:
            console.print(saved_lines(saved) or "done")
        return 0

    run.__name__ = f"cmd_{kind.name}"
    return run


def _format_from_out(kind: JobKind, params: dict, out: Path | None) -> None:
    """An unset format field takes ``out``'s extension; one the kind cannot write is an error."""
    if out is None or not out.suffix or out.is_dir():
        return
    suffix = out.suffix.lstrip(".").lower()
    for name in FORMAT_FIELDS:
        field = kind.params.model_fields.get(name)
        if field is None or name in params:
            continue
        allowed = field_choices(field.annotation) or []
        if suffix not in allowed:
            error(f"cannot write '.{suffix}'; use {', '.join('.' + str(a) for a in allowed)}.")
            raise SystemExit(2)
        params[name] = suffix
