"""The ``soundstage`` command: serve the API, run workers, and every job kind from a terminal.

soundstage serve [--host H] [--port P]     API + worker on embedded defaults
soundstage worker                          worker threads only (same database)
soundstage login --server URL              save a token for --server use
soundstage <kind> FILE... [flags] [-o OUT]  one command per job kind (cli.kind_commands)
soundstage jobs | genres | files | project | admin | migrate | sweep

This is a composition root: it reads the settings and hands the registry of job kinds
(``functions.pipelines.KINDS``) and the audio tools (``functions.audio_tools.AUDIO_TOOLS``) to
the services it opens.
"""

from __future__ import annotations

import argparse
import atexit
import getpass
import os
import signal
import sys
import threading
import traceback

from cli import admin, genres, projects
from cli.console import console, route_logs
from cli.credentials import open_client, request, save_credentials
from cli.job_client import add_verbose_arg, start_local_database_early
from cli.kind_commands import add_kind_commands
from shared.registry import Kinds

# Commands that are services: they log to stderr like the API does, --verbose or not.
SERVICE_COMMANDS = ("serve", "worker")


def cmd_serve(args) -> int:
    import uvicorn

    os.environ["SOUNDSTAGE_HOST"] = args.host
    os.environ["SOUNDSTAGE_PORT"] = str(args.port)
    from shared.config import get_settings, reset_settings

    reset_settings()
    s = get_settings()
    from shared.logs import setup_logging

    setup_logging(s.log_level)
    from web.app import create_app

    console.print(
        f"Soundstage on [bold]http://{args.host}:{args.port}[/bold]  "
        f"(data in {s.data_dir}, runner: {s.runner})"
    )
    from shared.shutdown import exit_on_sigterm

    exit_on_sigterm()  # so the embedded Postgres stops on SIGTERM too, not only on Ctrl-C
    uvicorn.run(
        create_app(kinds=args.kinds, audio=args.audio),
        host=args.host,
        port=args.port,
        log_level="warning",
        proxy_headers=True,
    )
    return 0


def cmd_worker(args) -> int:
    from shared.runner import LocalRunner
    from shared.services import open_services

    services = open_services(kinds=args.kinds, audio=args.audio)
    runner = LocalRunner(services, workers=args.threads).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    console.print(f"worker {runner.worker_id}: {runner.n_workers} threads, waiting for jobs")
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    runner.stop()
    return 0


def cmd_login(args) -> int:
    import httpx

    email = args.email or input("email: ")
    password = os.environ.get("SOUNDSTAGE_PASSWORD") or getpass.getpass("password: ")
    path = "/api/v1/auth/register" if args.register else "/api/v1/auth/login"
    r = httpx.post(
        f"{args.server.rstrip('/')}{path}", json={"email": email, "password": password}, timeout=30
    )
    if r.status_code >= 400:
        body = r.json()
        console.print(f"[red]Error[/red]: {body.get('message')} [dim]({body.get('code')})[/dim]")
        return 2
    save_credentials(args.server, r.json())
    console.print(f"Signed in to {args.server} as {email}.")
    return 0


def cmd_migrate(args) -> int:
    from shared.config import get_settings
    from shared.db import Database

    db = Database.open(get_settings())
    applied = db.migrate()
    console.print(f"applied: {', '.join(applied) or 'nothing (up to date)'}")
    return 0


def cmd_sweep(args) -> int:
    from shared.retention import rules_table, sweep
    from shared.services import open_services

    services = open_services(kinds=args.kinds, audio=args.audio)
    console.print(rules_table(services.settings.retention))
    console.print(sweep(services))
    return 0


def cmd_jobs(args) -> int:
    from rich.table import Table

    from shared.services import open_services

    if args.server:
        with open_client(args.server) as c:
            items = request(
                args.server, c, "GET", "/api/v1/jobs", params={"limit": args.limit}
            ).json()["items"]
    else:
        services = open_services(kinds=args.kinds, audio=args.audio)
        user = services.auth.ensure_local_user()
        from shared.submit import job_view

        rows, _ = services.jobs.list(user.id, args.limit)
        items = [job_view(services, r) for r in rows]
    table = Table("id", "kind", "status", "progress", "created")
    for j in items:
        table.add_row(
            j["id"][:8], j["kind"], j["status"], f"{j['progress']:.0f}%", str(j["created_at"])[:19]
        )
    console.print(table)
    return 0


def build_parser(kinds: Kinds) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="soundstage", description="Soundstage: an AI music studio.")
    # Its own dest: a subcommand's --verbose default would overwrite a shared one.
    p.add_argument("--verbose", dest="verbose_all", action="store_true", help="show the log lines")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("serve", help="run the API and a worker on embedded defaults")
    s.add_argument("--host", default=os.environ.get("SOUNDSTAGE_HOST", "127.0.0.1"))
    s.add_argument("--port", type=int, default=int(os.environ.get("SOUNDSTAGE_PORT", "8000")))
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("worker", help="run worker threads that take queued jobs")
    s.add_argument("--threads", type=int, default=None)
    s.set_defaults(func=cmd_worker)

    s = sub.add_parser("login", help="sign in to a Soundstage server and save the token")
    s.add_argument("--server", required=True, metavar="URL")
    s.add_argument("--email")
    s.add_argument("--register", action="store_true", help="create the account first")
    s.set_defaults(func=cmd_login)

    s = sub.add_parser("migrate", help="apply database migrations")
    s.set_defaults(func=cmd_migrate)
    s = sub.add_parser("sweep", help="delete files past their retention now")
    s.set_defaults(func=cmd_sweep)

    s = sub.add_parser("jobs", help="list your recent jobs")
    s.add_argument("--limit", type=int, default=20)
    s.add_argument("--server", metavar="URL", default=os.environ.get("SOUNDSTAGE_SERVER"))
    s.set_defaults(func=cmd_jobs)

    add_verbose_arg(s)
    add_kind_commands(sub, kinds)
    genres.add_commands(sub)
    admin.add_commands(sub)
    projects.add_commands(sub)
    return p


def main(argv: list[str] | None = None, kinds: Kinds | None = None) -> int:
    """Run one ``soundstage`` command; ``kinds`` defaults to every kind of the product."""
    argv = sys.argv[1:] if argv is None else argv
    start_local_database_early(argv)
    if kinds is None:
        from functions.pipelines import KINDS

        kinds = KINDS
    args = build_parser(kinds).parse_args(argv)
    args.kinds = kinds
    from functions.audio_tools import AUDIO_TOOLS

    args.audio = AUDIO_TOOLS
    if args.command not in SERVICE_COMMANDS:
        from shared.config import get_settings

        settings = get_settings()
        verbose = args.verbose_all or getattr(args, "verbose", False)
        route_logs(verbose, settings.data_dir, settings.log_level)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


def run() -> None:
    """The ``soundstage`` executable: ``main``, then a quick exit.

    Tearing down the interpreter (every module of numpy, scipy, pydantic and psycopg, the
    analysis' arrays) costs a command a fifth of a second after its work is done. When no
    other thread needs joining, the exit handlers run (the embedded Postgres stops, the logs
    are flushed), the output is flushed, and the process ends without the teardown.
    """
    try:
        code = main()
    except SystemExit as e:
        if e.code is not None and not isinstance(e.code, int):
            print(e.code, file=sys.stderr)
            code = 1
        else:
            code = e.code or 0
    except KeyboardInterrupt:
        code = 130
    except BaseException:
        traceback.print_exc()
        code = 1
    if any(
        t.is_alive() and not t.daemon
        for t in threading.enumerate()
        if t is not threading.current_thread()
    ):
        sys.exit(code)  # the interpreter's own exit joins them
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    run()
