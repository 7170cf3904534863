"""Running one job from a terminal: submit it, follow it with progress bars, save its outputs.

The CLI is a client of the job system, never a second implementation. Without ``--server`` it
opens the embedded services, creates the job as the built-in local user and runs it in this
process (a worker thread) while following its events; with ``--server URL`` it uploads to a
running API with the token saved by ``soundstage login`` and follows the job's SSE stream.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from pathlib import Path

from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from cli.console import console
from cli.credentials import open_client, request

TERMINAL = ("completed", "failed", "canceled")
# How often a job run here shows its new events; its end is seen at once, not on this beat.
EVENT_INTERVAL_S = 0.2


def add_job_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server",
        metavar="URL",
        default=os.environ.get("SOUNDSTAGE_SERVER"),
        help="send the job to a running Soundstage API instead of running it here",
    )
    parser.add_argument("--json", action="store_true", help="print the job's result as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_verbose_arg(parser)


def add_verbose_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--verbose", action="store_true", help="show the log lines (else kept in <data>/cli.log)"
    )


class _Bars:
    """One rich bar per stage plus the job's overall progress."""

    def __init__(self, stages: list[str], enabled: bool) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<24}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            console=console,
            disable=not enabled,
            transient=False,
        )
        self.overall = self.progress.add_task("overall", total=100, note="queued")
        self.tasks = {s: self.progress.add_task(f"  {s}", total=100, note="") for s in stages}

    def __enter__(self) -> _Bars:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def event(self, type_: str, data: dict) -> None:
        stage = data.get("stage")
        if stage and stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(f"  {stage}", total=100, note="")
        if type_ == "stage_update" and stage:
            status = data.get("status")
            engine = data.get("engine") or ""
            if status == "completed":
                self.progress.update(self.tasks[stage], completed=100, note=engine)
            else:
                self.progress.update(self.tasks[stage], note=f"{status} {engine}".strip())
        elif type_ == "progress":
            pct = float(data.get("progress", 0))
            self.progress.update(
                self.overall, completed=pct, note=data.get("message") or stage or ""
            )
        elif type_ == "message":
            self.progress.console.print(f"  [dim]{data.get('message', '')}[/dim]")
        elif type_ == "completed":
            self.progress.update(self.overall, completed=100, note="done")


def _fail(job: dict) -> None:
    err = job.get("error") or {}
    console.print(
        f"[red]Job {job['status']}[/red]: {err.get('message', '')} "
        f"[dim]({err.get('code', '')})[/dim]"
    )
    raise SystemExit(2)


# -- local ----------------------------------------------------------------------------------------


def _start_embedded_postgres() -> None:
    """Start (or find) the embedded Postgres in a background thread, so that ``pg_ctl`` waits
    for the server while this thread imports the job system; ``open_services`` then finds it
    running. A failure here is left to ``open_services``, which tries again and reports it.

    The settings are read here (the command needs them anyway); the thread imports only
    pgserver, not psycopg, so the server process starts at once."""
    from shared.config import get_settings

    settings = get_settings()
    if settings.database_url:
        return

    def start() -> None:
        try:
            from shared.embedded_pg import embedded_url

            embedded_url(settings.data_dir)
        except Exception:  # noqa: BLE001, S110 - open_services tries again and says why
            pass

    threading.Thread(target=start, name="start-postgres", daemon=True).start()


# Commands that never open the local database (they talk to a server or read a table).
NO_LOCAL_DATABASE = ("login", "genres")


def start_local_database_early(argv: list[str]) -> None:
    """Start the embedded Postgres at once when the command will use it: ``pg_ctl`` then
    runs while the command imports the job kinds (most of a cold start) instead of after.

    Decided from the raw arguments, before the parser exists (building it imports every kind):
    a command sent to a server (``--server`` or ``SOUNDSTAGE_SERVER``), a command listed in
    ``NO_LOCAL_DATABASE`` and a request for help start nothing.
    """
    words = [a for a in argv if not a.startswith("-")]
    if not words or words[0] in NO_LOCAL_DATABASE:
        return
    if os.environ.get("SOUNDSTAGE_SERVER") or any(
        a in ("-h", "--help") or a == "--server" or a.startswith("--server=") for a in argv
    ):
        return
    _start_embedded_postgres()


def _run_local(args, kind: str, files: list[Path], params: dict, inputs=None) -> dict:
    _start_embedded_postgres()
    from shared.errors import SoundstageError
    from shared.runner import LocalRunner
    from shared.services import open_services
    from shared.submit import Upload, job_view, submit_job

    services = open_services(kinds=args.kinds, audio=args.audio)
    try:
        user = services.auth.ensure_local_user()
        handles = [open(f, "rb") for f in files]
        try:
            job, _ = submit_job(
                services,
                user,
                kind,
                params,
                [Upload(f.name, h) for f, h in zip(files, handles, strict=True)],
                inputs=inputs,
            )
        except SoundstageError as e:
            console.print(f"[red]Error[/red]: {e.message} [dim]({e.code})[/dim]")
            raise SystemExit(2) from None
        finally:
            for h in handles:
                h.close()
        job_id = str(job["id"])
        runner = LocalRunner(services, workers=0, maintenance=False)
        worker = threading.Thread(target=runner.run_one, args=(job_id,), daemon=True)
        worker.start()
        cursor = 0
        with _Bars(services.kinds.get(kind).stage_names(), enabled=not args.quiet) as bars:
            finished = False
            while not finished:
                # Returns the moment the job ends; until then the bars catch up every interval.
                worker.join(EVENT_INTERVAL_S)
                finished = not worker.is_alive()
                for ev in services.jobs.events_after(user.id, job_id, cursor):
                    cursor = ev["id"]
                    bars.event(ev["type"], ev["data"])
        view = job_view(services, services.jobs.get(user.id, job_id))
        view["_local"] = True
        if view["status"] != "completed":
            _fail(view)
        args._services = services  # save_outputs copies straight from local storage
        return view
    except BaseException:
        services.close()
        raise


# -- remote ---------------------------------------------------------------------------------------


def _run_remote(args, kind: str, files: list[Path], params: dict, inputs=None) -> dict:
    import httpx

    server = args.server
    with open_client(server) as client:
        handles = [open(f, "rb") for f in files]
        try:
            r = request(
                server,
                client,
                "POST",
                "/api/v1/jobs",
                data={
                    "kind": kind,
                    "params": json.dumps(params),
                    **({"inputs": json.dumps(inputs)} if inputs else {}),
                },
                files=[("files", (f.name, h)) for f, h in zip(files, handles, strict=True)],
            )
        finally:
            for h in handles:
                h.close()
        if r.status_code >= 400:
            body = (
                r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
            )
            console.print(
                f"[red]Error {r.status_code}[/red]: {body.get('message', r.text)} "
                f"[dim]({body.get('code', '')})[/dim]"
            )
            raise SystemExit(2)
        job = r.json()
        stages = [s["name"] for s in job.get("stages", [])]
        last_id: str | None = None
        with _Bars(stages, enabled=not args.quiet) as bars:
            done = False
            while not done:
                headers = {"Last-Event-ID": last_id} if last_id else {}
                try:
                    with client.stream(
                        "GET", f"/api/v1/jobs/{job['id']}/events", headers=headers
                    ) as s:
                        etype, data, eid = None, [], None
                        for line in s.iter_lines():
                            if line.startswith("event:"):
                                etype = line[6:].strip()
                            elif line.startswith("data:"):
                                data.append(line[5:].strip())
                            elif line.startswith("id:"):
                                eid = line[3:].strip()
                            elif line == "" and etype:
                                last_id = eid or last_id
                                payload = json.loads("\n".join(data)) if data else {}
                                bars.event(etype, payload)
                                done = etype in ("completed", "error") or done
                                etype, data, eid = None, [], None
                except httpx.HTTPError:
                    time.sleep(1.0)  # reconnect with Last-Event-ID: nothing is missed
                if not done:
                    status = request(server, client, "GET", f"/api/v1/jobs/{job['id']}").json()[
                        "status"
                    ]
                    done = status in TERMINAL
        view = request(server, client, "GET", f"/api/v1/jobs/{job['id']}").json()
    if view["status"] != "completed":
        _fail(view)
    return view


def run_job_cli(args, kind: str, files: list[Path], params: dict) -> dict:
    """Submit a job (locally or to ``--server``), show progress, return the final job object.

    An entry of ``files`` may be a reference instead of a path: ``file:<id>`` (a library
    file) or ``job:<id>[/<output>]`` (an earlier job's output); no bytes are uploaded for it.
    """
    paths, inputs = split_references(files)
    for f in paths:
        if not f.is_file():
            console.print(f"[red]Error[/red]: no such file: {f}")
            raise SystemExit(2)
    if getattr(args, "server", None):
        return _run_remote(args, kind, paths, params, inputs)
    return _run_local(args, kind, paths, params, inputs)


def parse_reference(text: str) -> dict | None:
    """``file:<id>`` -> ``{"file": id}``; ``job:<id>/<output>`` -> ``{"job", "output"}``."""
    if text.startswith("file:"):
        return {"file": text[5:]}
    if text.startswith("job:"):
        job, _, output = text[4:].partition("/")
        return {"job": job, **({"output": output} if output else {})}
    return None


def split_references(files: list) -> tuple[list[Path], list[dict] | None]:
    """Paths to upload, and the job's ``inputs`` (None when every entry is a path)."""
    paths: list[Path] = []
    entries: list[dict] = []
    for f in files:
        ref = parse_reference(str(f))
        if ref is None:
            entries.append({"upload": len(paths)})
            paths.append(Path(f))
        else:
            entries.append(ref)
    return paths, (entries if len(paths) < len(entries) else None)


def save_outputs(args, job: dict, out: Path | None, main_output: str | None) -> list[Path]:
    """Copy (local) or download (remote) a job's outputs; returns the written paths.

    ``out`` with an extension is the file for the main output (``main_output``, else the first);
    without one it is a folder that receives every output; None saves the main output in the
    current folder under its own name.
    """
    outputs = job.get("outputs") or []
    if not outputs:
        return []
    main = next((o for o in outputs if o["name"] == main_output), outputs[0])
    if out is None:
        targets = [(main, Path(main.get("filename") or main["name"]))]
    elif out.suffix and not out.is_dir():
        targets = [(main, out)]
    else:
        targets = [(o, out / (o.get("filename") or o["name"])) for o in outputs]
    services = getattr(args, "_services", None)
    for o, dest in targets:
        dest.parent.mkdir(parents=True, exist_ok=True)
        if services is not None:
            services.storage.download(o["bucket"], o["path"], dest)
        else:
            import httpx

            with httpx.stream("GET", o["url"], timeout=120, follow_redirects=True) as r:
                r.raise_for_status()
                with open(dest, "wb") as fh:
                    for chunk in r.iter_bytes():
                        fh.write(chunk)
    return [dest for _, dest in targets]
