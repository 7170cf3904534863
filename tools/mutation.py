"""Mutation testing as a measure of the tests: ``make mutation`` (slow; not part of ``make test``).

Runs mutmut 2.x module by module, each against a fast, targeted test selection, in a throwaway
copy of the working tree (mutmut edits files in place; the checkout is never left mutated).
Prints ``killed/total`` per module and writes each module's surviving mutants as diffs to
``mutation-report/<module>.txt`` for review.

    python tools/mutation.py                      # every module below
    python tools/mutation.py loudness auth        # some of them (by short name)
    MUTATION_BUDGET_S=1800 python tools/mutation.py loudness   # stop a module after 30 min

mutmut 2.5.1 sometimes stops part-way ("Mutant.line is required" / "null mutant"): the figures
then cover the mutants that ran and say how many stayed untested; ``mutmut run ID`` in the copy
tests one mutant at a time past the one it stumbled on.

A module entry may name a scope (a class or functions): only those lines are mutated, through
mutmut's patch-file option, so a file's other parts do not dilute the figure.
"""

from __future__ import annotations

import ast
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# short name -> (file, scope or None for the whole file, pytest arguments). The selections
# are the fast tests that aim at the module; ``--noconftest`` where they need no server, so a
# mutant costs one interpreter start and a few seconds.
MODULES: dict[str, tuple[str, list[str] | None, list[str]]] = {
    "loudness": (
        "functions/loudness.py",
        None,
        # Cheapest first: with -x most mutants die in the first second or two.
        ["--noconftest"]
        + [
            f"tests/functions/test_loudness{f}.py::{t}"
            for f, t in (
                ("", "test_silence_is_reported_as_a_floor_not_infinity"),
                ("_refs", "test_silence_has_no_true_peak"),
                ("_refs", "test_true_peak_is_not_the_sample_peak"),
                ("", "test_true_peak_finds_the_inter_sample_peak"),
                ("_refs", "test_the_absolute_gate_sits_at_minus_70_lufs"),
                ("_refs", "test_ebu_3341_integrated_loudness"),
                ("_refs", "test_ebu_3341_case6_five_channels"),
                ("_refs", "test_ebu_3341_case9_short_term_is_constant"),
                ("_refs", "test_ebu_3342_loudness_range"),
                ("_refs", "test_lra_reads_the_10th_to_95th_percentile_spread"),
                ("", "test_integrated_loudness_matches_pyloudnorm"),
                ("", "test_loudness_range_of_a_ten_db_step"),
            )
        ],
    ),
    "auth": (
        "shared/auth.py",
        ["User", "is_admin", "TokenVerifier"],
        ["--noconftest", "tests/test_auth_verifier.py"],
    ),
    "master": ("functions/master.py", None, ["tests/functions/test_master.py"]),
    "mashup": ("functions/mashup.py", None, ["tests/functions/test_mashup.py"]),
    "jobs": ("shared/jobs.py", None, ["tests/test_platform_jobs.py"]),
    "runner": (
        "shared/runner.py",
        None,
        ["tests/test_platform_recovery.py", "tests/test_retries.py"],
    ),
}


def _scope_patch(path: Path, names: list[str]) -> str:
    """A unified diff that 'adds' the lines of the named top-level definitions, so mutmut's
    ``--use-patch-file`` mutates those lines only."""
    source = path.read_text()
    lines = source.splitlines()
    hunks = []
    for node in ast.parse(source).body:
        if getattr(node, "name", None) in names:
            start = min([d.lineno for d in getattr(node, "decorator_list", [])] + [node.lineno])
            end = node.end_lineno
            body = "".join(f"+{line}\n" for line in lines[start - 1 : end])
            hunks.append(f"@@ -{start - 1},0 +{start},{end - start + 1} @@\n{body}")
    rel = path.relative_to(path.parents[1])
    return f"--- a/{rel}\n+++ b/{rel}\n" + "".join(hunks)


def run(short: str, work: Path, report: Path) -> tuple[int, int]:
    target, scope, tests = MODULES[short]
    (work / ".mutmut-cache").unlink(missing_ok=True)
    runner = (
        f"{sys.executable} -m pytest -x -q -p no:cacheprovider "
        f"--basetemp {work}/bt-{short} " + shlex.join(tests)
    )
    cmd = [
        str(Path(sys.executable).parent / "mutmut"),
        "run",
        "--paths-to-mutate",
        target,
        "--tests-dir",
        "tests",
        "--runner",
        runner,
        "--no-progress",
        "--simple-output",
    ]
    if scope:
        patch = work / f"scope-{short}.diff"
        patch.write_text(_scope_patch(work / target, scope))
        cmd += ["--use-patch-file", str(patch)]
    budget_s = float(os.environ.get("MUTATION_BUDGET_S", "0")) or None
    try:
        subprocess.run(cmd, cwd=work, check=False, timeout=budget_s)
    except subprocess.TimeoutExpired:
        print(f"{short}: stopped after {budget_s:g} s; the rest stays untested", flush=True)
    status = _statuses(work)
    # "ok_suspicious" is mutmut's name for a mutant killed by a slow test run: killed.
    killed = len(status.get("ok_killed", [])) + len(status.get("ok_suspicious", []))
    survivors = status.get("bad_survived", [])
    timeouts = status.get("bad_timeout", [])
    total = killed + len(survivors) + len(timeouts)
    untested = len(status.get("untested", []))
    lines = [f"{short}: {target} scope={scope or 'whole file'} tests={' '.join(tests)}"]
    lines.append(
        f"killed {killed}/{total} tested (timeouts counted as survivors: {len(timeouts)});"
        f" untested {untested}"
    )
    for mid in survivors + timeouts:
        show = subprocess.run(
            [str(Path(sys.executable).parent / "mutmut"), "show", str(mid)],
            cwd=work,
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        lines.append(f"--- mutant {mid}\n{show}")
    report.mkdir(exist_ok=True)
    (report / f"{short}.txt").write_text("\n".join(lines) + "\n")
    return killed, total


def _statuses(work: Path) -> dict[str, list[int]]:
    """Mutant ids by status, from mutmut's cache (``ok_killed``, ``bad_survived``...)."""
    import sqlite3

    out: dict[str, list[int]] = {}
    with sqlite3.connect(work / ".mutmut-cache") as db:
        for mid, status in db.execute("select id, status from Mutant order by id"):
            out.setdefault(status, []).append(mid)
    return out


def main(argv: list[str]) -> int:
    names = argv or list(MODULES)
    work = Path(tempfile.mkdtemp(prefix="mutation-"))
    shutil.copytree(
        ROOT,
        work,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "mutation-report", "__pycache__", "*.egg-info"
        ),
    )
    figures = {}
    try:
        for short in names:
            figures[short] = run(short, work, ROOT / "mutation-report")
            k, t = figures[short]
            print(f"== {short}: killed {k}/{t} ({100 * k / max(t, 1):.0f} %)", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for short, (k, t) in figures.items():
        print(f"{short:10s} {k:4d}/{t:<4d} {100 * k / max(t, 1):5.1f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
