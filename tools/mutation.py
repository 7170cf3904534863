"""Mutation testing as a measure of the tests: ``make mutation`` (slow; not part of ``make test``).

Runs mutmut 2.x module by module, each against a fast, targeted test selection, in a throwaway
copy of the working tree (mutmut edits files in place; the checkout is never left mutated).
Prints ``killed/total`` per module and writes each module's surviving mutants as diffs to
``mutation-report/<module>.txt`` for review.

    python tools/mutation.py                      # every module below
    python tools/mutation.py loudness auth        # some of them (by short name)
    MUTATION_BUDGET_S=1800 python tools/mutation.py loudness   # stop a module after 30 min
    MUTATION_CACHE_DIR=.mutation-cache python tools/mutation.py mashup  # keep mutmut's cache

With ``MUTATION_CACHE_DIR`` each module's mutmut cache is kept there and the next run resumes
from it: mutants already killed stay killed, the survivors (when the tests changed) and the
untested ones run again. So after adding tests, a rerun costs the survivors only.

mutmut 2.5.1 sometimes stops part-way ("Mutant.line is required" / "null mutant"): it is run
again (it resumes from its cache), a mutant it stops at twice on its own (``mutmut run ID``);
with a budget the figures cover the mutants that ran and say how many stayed untested.

A module entry may name a scope (a class or functions): only those lines are mutated, through
mutmut's patch-file option, so a file's other parts do not dilute the figure.
"""

from __future__ import annotations

import ast
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# short name -> (files, comma-separated; scope or None for the whole files; pytest arguments).
# The selections are the fast tests that aim at the module; ``--noconftest`` where they need no
# server, so a mutant costs one interpreter start and a few seconds (``-k`` then leaves out the
# tests of the same file that need the server's fixtures: with ``--noconftest`` they would
# error, and an error would count every mutant as killed). The job store's and the runner's
# tests start embedded Postgres and worker processes: 15-60 s a mutant, hence a budget.
_NO_SERVER = "not through_the_api and not measures_at and not rejects_a_track"
_DB_PLUGINS_OFF = ["-p", "no:hypothesispytest", "-p", "no:schemathesis", "-p", "no:anyio"]
# pytest's start without the plugins that import hypothesis and schemathesis (5 s of a
# mutant's 6 under load), for selections that use neither: pure-numpy tests then start in 1 s.
_LEAN = ["--noconftest", "-p", "no:hypothesispytest", "-p", "no:schemathesis", "-p", "no:anyio"]
MODULES: dict[str, tuple[str, list[str] | None, list[str]]] = {
    "loudness": (
        "functions/loudness.py",
        None,
        # Cheapest first: with -x most mutants die in the first second or two.
        _LEAN
        + [
            f"tests/functions/test_loudness{f}.py::{t}"
            for f, t in (
                ("", "test_silence_is_reported_as_a_floor_not_infinity"),
                ("_gates", "test_the_sample_peak_is_the_largest_magnitude_of_either_sign"),
                ("_gates", "test_a_clip_shorter_than_a_block_has_no_loudness"),
                (
                    "_gates",
                    "test_the_report_rounds_to_hundredths_and_an_empty_clip_reads_the_floor",
                ),
                ("_gates", "test_two_short_term_readings_are_enough_for_a_range"),
                ("_gates", "test_one_reading_left_by_the_relative_gate_has_no_range"),
                ("_gates", "test_lra_is_the_10th_to_95th_percentile_of_evenly_spaced_readings"),
                ("_gates", "test_short_term_windows_are_3_s_long"),
                ("_refs", "test_the_absolute_gate_sits_at_minus_70_lufs"),
                ("_refs", "test_ebu_3341_integrated_loudness"),
                ("_refs", "test_ebu_3341_case6_five_channels"),
                ("_refs", "test_ebu_3341_case9_short_term_is_constant"),
                ("_refs", "test_ebu_3342_loudness_range"),
                ("_refs", "test_lra_reads_the_10th_to_95th_percentile_spread"),
                ("_gates", "test_a_clip_of_one_block_is_measured"),
                ("", "test_integrated_loudness_matches_pyloudnorm"),
                ("", "test_loudness_range_of_a_ten_db_step"),
                ("_gates", "test_the_k_filter_carries_its_state_from_chunk_to_chunk"),
                ("", "test_loudness_filtered_in_two_halves_is_one_pass_to_rounding"),
                ("_gates", "test_the_relative_gate_sits_10_lu_under_the_ungated_loudness"),
                ("_gates", "test_the_lra_gate_sits_20_lu_under_the_short_term_loudness"),
                ("_refs", "test_short_term_loudness_matches_ffmpeg"),
                ("_refs", "test_dynamic_material_matches_pyloudnorm_and_ffmpeg"),
            )
        ],
    ),
    # The true-peak meters left functions/loudness.py (which re-exports them) for their own file.
    "true_peak": (
        "functions/true_peak.py",
        None,
        _LEAN
        + [
            f"tests/functions/test_{f}.py::{t}"
            for f, t in (
                ("loudness_refs", "test_silence_has_no_true_peak"),
                ("loudness", "test_true_peak_finds_the_inter_sample_peak"),
                (
                    "true_peak_exact",
                    "test_a_one_sample_clip_reads_its_sample_and_an_empty_one_nothing",
                ),
                (
                    "true_peak_exact",
                    "test_the_4x_meter_reads_every_point_of_the_oversampled_signal",
                ),
                (
                    "true_peak_exact",
                    "test_the_oversampled_envelope_is_the_largest_point_around_each_sample",
                ),
                (
                    "true_peak_exact",
                    "test_the_reconstructed_peak_is_the_waveforms_within_hundredths_of_a_db",
                ),
                (
                    "true_peak_exact",
                    "test_the_screen_keeps_a_block_whose_samples_are_3_db_under_but_whose_waveform_is_over",
                ),
                (
                    "true_peak_exact",
                    "test_the_screen_keeps_a_block_at_the_interpolators_worst_case",
                ),
                (
                    "true_peak_exact",
                    "test_the_4x_meter_finds_the_worst_case_point_wherever_it_falls_in_its_screen",
                ),
                (
                    "true_peak_exact",
                    "test_both_meters_read_a_peak_at_the_tracks_very_ends_as_anywhere_else",
                ),
                ("loudness_refs", "test_true_peak_is_not_the_sample_peak"),
                ("loudness_refs", "test_true_peak_agrees_with_ffmpeg_and_a_long_filter"),
            )
        ],
    ),
    "auth": (
        "shared/auth.py",
        ["User", "is_admin", "TokenVerifier"],
        ["--noconftest", "tests/test_auth_verifier.py"],
    ),
    # Cheapest first: the presets, the soft clipper and the tonal balance take milliseconds;
    # the masters (a second or two each) come last. The mix and beat ceilings of
    # test_ceilings_refs.py run no master.py code and are left out.
    "master": (
        "functions/master.py",
        None,
        _LEAN
        + [
            f"tests/functions/{f}.py::{t}"
            for f, t in (
                (
                    "test_master",
                    "test_presets_are_the_published_targets_and_a_custom_target_takes_the_nearest",
                ),
                ("test_master", "test_targets_from_minus_24_to_minus_6_lufs_are_accepted"),
                ("test_master", "test_soft_clip_knee_sits_three_db_under_the_ceiling_by_default"),
                ("test_master", "test_soft_clip_is_transparent_below_its_knee_and_bounded_above"),
                ("test_master", "test_the_fast_spectrum_is_scipys_welch"),
                ("test_master_stages", "test_a_linear_loudness_curve_is_hit_in_one_step"),
                ("test_master_stages", "test_a_limited_loudness_curve_is_hit_by_a_secant_step"),
                ("test_master_stages", "test_the_secant_slope_is_held_between_a_tenth_and_one"),
                (
                    "test_master_stages",
                    "test_a_plateau_stops_the_steps_instead_of_running_the_gain_away",
                ),
                (
                    "test_master_stages",
                    "test_the_excerpt_is_evenly_spaced_pieces_covering_a_quarter",
                ),
                ("test_master_stages", "test_a_track_under_eight_pieces_long_is_its_own_excerpt"),
                (
                    "test_master",
                    "test_tonal_balance_shelves_pull_half_the_tilt_back_within_three_db",
                ),
                ("test_master", "test_tonal_balance_of_a_clip_shorter_than_its_analysis_window"),
                (
                    "test_master",
                    "test_tonal_balance_fits_the_eight_octave_bands_from_60_hz_to_11_khz",
                ),
                ("test_master", "test_tonal_balance_leaves_out_everything_over_its_top_band"),
                ("test_master", "test_tonal_balance_reads_the_same_tilt_at_low_sample_rates"),
                (
                    "test_master",
                    "test_tonal_balance_leaves_audio_with_under_three_octave_bands_alone",
                ),
                ("test_master", "test_silence_and_impossible_targets_are_typed_errors"),
                ("test_master_report", "test_the_reported_gain_is_the_gain_applied"),
                (
                    "test_master_stages",
                    "test_a_rider_that_falls_short_is_made_up_by_a_static_trim",
                ),
                (
                    "test_master_report",
                    "test_the_reported_true_peak_reduction_is_the_one_applied",
                ),
                (
                    "test_master_stages",
                    "test_a_long_track_whose_excerpt_is_silent_is_searched_whole",
                ),
                ("test_master_stages", "test_the_last_stage_leaves_audio_under_the_ceiling_alone"),
                (
                    "test_master_stages",
                    "test_the_last_stage_holds_the_true_peak_by_independent_meters",
                ),
                ("test_master_stages", "test_the_last_stage_catches_peaks_the_4x_grid_misses"),
                (
                    "test_master_stages",
                    "test_the_clipper_takes_the_transient_tips_so_the_limiter_ducks_little",
                ),
                (
                    "test_master_stages",
                    "test_the_glue_compressor_works_on_the_loud_moments_at_the_presets_ratio",
                ),
                ("test_master_stages", "test_the_chain_report_says_what_the_master_did"),
                (
                    "test_master_stages",
                    "test_a_track_its_excerpt_misjudges_takes_more_passes_and_says_so",
                ),
                ("test_master", "test_a_target_out_of_reach_ends_as_loud_as_the_ceiling_lets_it"),
                ("test_master", "test_tonal_balance_moves_the_measured_bands_by_the_shelves"),
                ("test_master", "test_lands_on_target_under_the_ceiling"),
                (
                    "test_master",
                    "test_a_loud_master_uses_its_headroom_up_to_the_ceiling_it_is_given",
                ),
            )
        ],
    ),
    # The mashup's decisions; its track facts and alignment are the pipeline's helpers.
    "mashup": (
        "functions/mashup.py",
        None,
        [
            "--noconftest",
            "-k",
            _NO_SERVER,
            "tests/functions/test_mashup_plan.py",
            "tests/functions/test_mashup_keys.py",
            "tests/functions/test_mashup.py",
            "tests/functions/test_mashup_entry.py",
        ],
    ),
    # The job store: its queries (jobs.py) and its lifecycle (claim, heartbeat, recovery,
    # fail, complete, cancel, requeue, sweep) and the stage/cost/output records. Its own tests
    # drive it by hand on a database with no worker (a session of them takes a few seconds);
    # the server is the one tools/mutation.py started (tests/conftest.py), and the pytest
    # plugins for property tests are left out (none of these tests use them).
    "jobs": (
        "shared/jobs.py",
        None,
        [
            *_DB_PLUGINS_OFF,
            "tests/test_job_store.py",
            "tests/test_job_lifecycle.py",
        ],
    ),
    "job_lifecycle": (
        "shared/job_lifecycle.py",
        None,
        [*_DB_PLUGINS_OFF, "tests/test_job_lifecycle.py", "tests/test_job_store.py"],
    ),
    "job_recording": (
        "shared/job_recording.py",
        None,
        [*_DB_PLUGINS_OFF, "tests/test_job_recording.py", "tests/test_job_lifecycle.py"],
    ),
    # The runner and the executors that decide where a stage runs.
    # The runner; its executors (where a stage runs) apart: their tests need no server.
    "runner": (
        "shared/runner.py",
        None,
        [
            *_DB_PLUGINS_OFF,
            "tests/test_runner.py",
            "tests/test_lifecycle_edges.py::test_a_worker_that_lost_its_job_writes_nothing_over_the_new_owner",
            "tests/test_lifecycle_edges.py::test_a_lost_worker_whose_pipeline_then_fails_writes_nothing",
        ],
    ),
    "executors": (
        "shared/executors.py",
        None,
        [
            "--noconftest",
            *_DB_PLUGINS_OFF,
            "tests/test_executors.py",
            *(
                f"tests/test_modal_wiring.py::{t}"
                for t in (
                    "test_remote_progress_reaches_the_stage",
                    "test_remote_fan_out_reports_each_item_to_its_own_progress",
                    "test_a_cancel_seen_in_remote_progress_ends_the_call",
                    "test_stages_without_progress_need_no_queue",
                )
            ),
        ],
    ),
}


def _scope_patch(work: Path, targets: list[str], names: list[str]) -> str:
    """A unified diff that 'adds' the lines of the named top-level definitions (in any of the
    target files), so mutmut's ``--use-patch-file`` mutates those lines only."""
    out = []
    for rel in targets:
        source = (work / rel).read_text()
        lines = source.splitlines()
        hunks = []
        for node in ast.parse(source).body:
            if getattr(node, "name", None) in names:
                start = min([d.lineno for d in getattr(node, "decorator_list", [])] + [node.lineno])
                end = node.end_lineno
                body = "".join(f"+{line}\n" for line in lines[start - 1 : end])
                hunks.append(f"@@ -{start - 1},0 +{start},{end - start + 1} @@\n{body}")
        if hunks:
            out.append(f"--- a/{rel}\n+++ b/{rel}\n" + "".join(hunks))
    return "".join(out)


def run(short: str, work: Path, report: Path) -> tuple[int, int]:
    target, scope, tests = MODULES[short]
    cache = work / ".mutmut-cache"
    kept = Path(os.environ["MUTATION_CACHE_DIR"]) / f"{short}.sqlite" if _keeps() else None
    if kept and kept.exists():
        shutil.copyfile(kept, cache)
    else:
        cache.unlink(missing_ok=True)
    pytest = (
        f"{sys.executable} -m pytest -x -q -p no:cacheprovider "
        f"--basetemp {work}/bt-{short} " + shlex.join(tests)
    )
    # mutmut 2.x counts only exit status 1 as killed. A mutant that breaks the module's import
    # (``[*args]`` -> ``[/args]`` is a SyntaxError) ends pytest with 2 (errors while collecting)
    # or 4 (a test id whose module did not import): the tests failed, so it counts as killed.
    # The run without mutants passes first (mutmut stops otherwise), so the selection is sound.
    runner = "sh -c " + shlex.quote(f"{pytest}; s=$?; case $s in 2|4) exit 1;; esac; exit $s")
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
        patch.write_text(_scope_patch(work, target.split(","), scope))
        cmd += ["--use-patch-file", str(patch)]
    budget_s = float(os.environ.get("MUTATION_BUDGET_S", "0")) or None
    _run_until_done(cmd, work, budget_s, short)
    _drop_session_databases()
    if kept and cache.exists():
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cache, kept)
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


def _run_until_done(cmd: list[str], work: Path, budget_s: float | None, short: str) -> None:
    """``mutmut run`` again while it stops part-way with mutants left untested (it resumes from
    its cache); a mutant it stops at twice running is run on its own (``mutmut run ID``)."""
    deadline = time.monotonic() + budget_s if budget_s else None
    previous: list[int] | None = None  # the untested mutants before the last full run
    untested: list[int] | None = None  # None: not run yet (a kept cache retests survivors)
    alone: set[int] = set()
    while True:
        left = deadline - time.monotonic() if deadline else None
        if untested is not None and untested == previous:
            if untested[0] in alone:
                print(f"{short}: mutmut stops at mutant {untested[0]}; the rest stays untested")
                return
            alone.add(untested[0])
            finished = _run_group([*cmd[:2], str(untested[0]), *cmd[2:]], work, left)
        else:
            previous = untested
            finished = _run_group(cmd, work, left)
        if not finished:
            print(f"{short}: stopped after {budget_s:g} s; the rest stays untested", flush=True)
            return
        if not (work / ".mutmut-cache").exists():
            return  # the tests failed without any mutant: mutmut said why
        untested = _statuses(work).get("untested", [])
        if not untested:
            return


def _run_group(cmd: list[str], work: Path, timeout_s: float | None) -> bool:
    """Run ``cmd`` in its own process group; past ``timeout_s`` end the whole group (mutmut's
    worker and its pytest too) and return False. mutmut hangs after its worker dies with a
    traceback: the group is then ended too, and the run counts as finished."""
    if timeout_s is not None and timeout_s <= 0:
        return False
    log = work / "mutmut.log"
    deadline = time.monotonic() + timeout_s if timeout_s is not None else None
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd, cwd=work, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        crashed_at = None
        while proc.poll() is None:
            try:
                time.sleep(2)
            except KeyboardInterrupt:  # mutmut runs in its own session: Ctrl-C ends it here
                _end_group(proc)
                raise
            now = time.monotonic()
            if crashed_at is None and "Traceback" in log.read_text(errors="replace"):
                crashed_at = now
            if (crashed_at is not None and now - crashed_at > 10) or (
                deadline is not None and now > deadline
            ):
                _end_group(proc)
                break
    sys.stdout.write(log.read_text(errors="replace")[-2000:])
    return deadline is None or time.monotonic() <= deadline


def _end_group(proc: subprocess.Popen) -> None:
    # mutmut first, at once: a test run ended by the signal below must not be recorded (its
    # exit status would read as a killed mutant).
    try:
        os.kill(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            return


def _keeps() -> bool:
    return bool(os.environ.get("MUTATION_CACHE_DIR"))


def _statuses(work: Path) -> dict[str, list[int]]:
    """Mutant ids by status, from mutmut's cache (``ok_killed``, ``bad_survived``...)."""
    import sqlite3

    out: dict[str, list[int]] = {}
    with sqlite3.connect(work / ".mutmut-cache") as db:
        for mid, status in db.execute("select id, status from Mutant order by id"):
            out.setdefault(status, []).append(mid)
    return out


# tests/conftest.py reuses the Postgres named here (each test session in databases of its own,
# copies of the migrated template).
REUSE_SERVER_ENV = "SOUNDSTAGE_TEST_PG_SERVER"
REUSE_TEMPLATE_ENV = "SOUNDSTAGE_TEST_PG_TEMPLATE"
TEMPLATE = "soundstage_template"
_KEEP = ("postgres", "template0", "template1", TEMPLATE)


def _shared_postgres(work: Path):
    """One embedded Postgres for the whole run, with a migrated template database: a test
    session of the job store's modules then copies it (a fraction of a second) instead of
    starting a server of its own and running the migrations."""
    import warnings

    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    import pgserver
    import psycopg

    sys.path.insert(0, str(ROOT))
    from shared.db import Database

    work.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(work / "pg", cleanup_mode="delete")
    uri = server.get_uri()
    with psycopg.connect(uri, autocommit=True) as conn:
        # A throwaway server: nothing on it needs to survive a crash.
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            conn.execute(f"alter system set {setting} = off")
        conn.execute("select pg_reload_conf()")
        conn.execute(f"create database {TEMPLATE}")
    db = Database(uri.replace("/postgres?", f"/{TEMPLATE}?"), pool_size=1)
    db.migrate()
    db.close()
    os.environ[REUSE_SERVER_ENV] = uri
    os.environ[REUSE_TEMPLATE_ENV] = TEMPLATE
    return server


def _drop_session_databases() -> None:
    """Drop the databases the test sessions left (they do not drop their own: each drop is a
    checkpoint, a second or so a mutant)."""
    import psycopg

    uri = os.environ.get(REUSE_SERVER_ENV)
    if not uri:
        return
    with psycopg.connect(uri, autocommit=True) as conn:
        names = [r[0] for r in conn.execute("select datname from pg_database")]
        for name in names:
            if name not in _KEEP:
                conn.execute(f'drop database if exists "{name}" with (force)')


def main(argv: list[str]) -> int:
    names = argv or list(MODULES)
    work = Path(tempfile.mkdtemp(prefix="mutation-"))
    shutil.copytree(
        ROOT,
        work,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "mutation-report", "__pycache__", "*.egg-info", "node_modules"
        ),
    )
    figures = {}
    server = None
    try:
        for short in names:
            if server is None and "--noconftest" not in MODULES[short][2]:
                server = _shared_postgres(work / "server")
            figures[short] = run(short, work, ROOT / "mutation-report")
            k, t = figures[short]
            print(f"== {short}: killed {k}/{t} ({100 * k / max(t, 1):.0f} %)", flush=True)
    finally:
        if server is not None:
            server.cleanup()
            os.environ.pop(REUSE_SERVER_ENV, None)
            os.environ.pop(REUSE_TEMPLATE_ENV, None)
        shutil.rmtree(work, ignore_errors=True)
    for short, (k, t) in figures.items():
        print(f"{short:10s} {k:4d}/{t:<4d} {100 * k / max(t, 1):5.1f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
