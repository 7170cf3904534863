"""``soundstage project ...``: version control for audio from a terminal.

    soundstage project new NAME [--public] [--description TEXT]
    soundstage project list [--scope all|mine|public]
    soundstage project log PROJECT [--ref main~3] [--limit 20]
    soundstage project commit PROJECT -m MSG [--mix SRC] [--stem NAME=SRC ...] [--remove NAME]
                                     [--from-job ID] [--branch B] [--bpm 120 --key Am --tag T]
    soundstage project diff PROJECT [FROM] TO
    soundstage project branch PROJECT [NAME [--from REF] | --delete NAME]
    soundstage project merge PROJECT SOURCE [--into BRANCH] [--on-conflict ours|theirs]
    soundstage project revert PROJECT REF
    soundstage project fork PROJECT [--name NAME]
    soundstage project export PROJECT [REF] -o song.zip
    soundstage files [--kind audio] [--search TEXT]   my library (ids for file:<id>)

PROJECT is an id or the name of one of my projects; SRC is a path (uploaded), ``file:<id>``
(a library file) or ``job:<id>/<output>`` (an earlier job's output). Every command goes through
the HTTP API: with ``--server URL`` to that server (token from ``soundstage login``), without
it to the same app in this process on the embedded defaults, as the built-in local user -- one
implementation, the same answers both ways. ``--json`` prints the API's JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from cli.api_session import ApiSession
from cli.console import console
from cli.job_client import parse_reference


def _project_id(api: ApiSession, ref: str) -> str:
    """An id as given, or the id of my project with this name."""
    import uuid

    try:
        return str(uuid.UUID(ref))
    except ValueError:
        pass
    items = api.json("GET", "/api/v1/projects", params={"scope": "mine", "q": ref, "limit": 100})
    match = [p for p in items["items"] if p["name"] == ref]
    if not match:
        console.print(f"[red]Error[/red]: you have no project named '{ref}'.")
        raise SystemExit(2)
    return match[0]["id"]


def _out(args, data: Any, text: str) -> None:
    if args.json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        console.print(text)


def _meta(m: dict) -> str:
    bits = [
        f"{m['bpm']:g} BPM" if m.get("bpm") else "",
        m.get("key") or "",
        f"{m['loudness_lufs']} LUFS" if m.get("loudness_lufs") is not None else "",
        " ".join(f"#{t}" for t in m.get("tags") or []),
    ]
    return ", ".join(b for b in bits if b)


def cmd_new(args, api: ApiSession) -> None:
    p = api.json(
        "POST",
        "/api/v1/projects",
        json={"name": args.name, "description": args.description, "is_public": args.public},
    )
    _out(args, p, f"created project [bold]{p['name']}[/bold] {p['id']}")


def cmd_list(args, api: ApiSession) -> None:
    from rich.table import Table

    page = api.json("GET", "/api/v1/projects", params={"scope": args.scope, "limit": 100})
    table = Table("id", "name", "public", "mine", "commits", "branches", "updated")
    for p in page["items"]:
        table.add_row(
            p["id"][:8],
            p["name"],
            "yes" if p["is_public"] else "",
            "yes" if p["is_owner"] else "",
            str(p["commit_count"]),
            str(p["branch_count"]),
            str(p["updated_at"])[:19],
        )
    if args.json:
        _out(args, page, "")
    else:
        console.print(table)


def cmd_log(args, api: ApiSession) -> None:
    pid = _project_id(api, args.project)
    params = {"limit": args.limit, **({"ref": args.ref} if args.ref else {})}
    page = api.json("GET", f"/api/v1/projects/{pid}/log", params=params)
    lines = []
    for c in page["items"]:
        merge = " [magenta](merge)[/magenta]" if len(c["parents"]) > 1 else ""
        lines.append(
            f"[yellow]{c['id'][:8]}[/yellow] {c['message']}{merge}  [dim]{_meta(c['metadata'])}"
            f"  {c['author_email'] or ''} {str(c['created_at'])[:19]}[/dim]"
        )
    _out(args, page, "\n".join(lines) or "no commits yet")


def _source(text: str, uploads: list[Path]) -> dict:
    ref = parse_reference(text)
    if ref is not None:
        return ref
    path = Path(text)
    if not path.is_file():
        console.print(f"[red]Error[/red]: no such file: {path}")
        raise SystemExit(2)
    uploads.append(path)
    return {"upload": len(uploads) - 1}


def cmd_commit(args, api: ApiSession) -> None:
    pid = _project_id(api, args.project)
    uploads: list[Path] = []
    snapshot: dict[str, Any] = {"stems": {}, "remove": args.remove or []}
    if args.from_job:
        snapshot["from_job"] = args.from_job
    if args.mix:
        snapshot["mix"] = _source(args.mix, uploads)
    for item in args.stem or []:
        name, sep, src = item.partition("=")
        if not sep:
            console.print(f"[red]Error[/red]: --stem takes NAME=SOURCE, got '{item}'.")
            raise SystemExit(2)
        snapshot["stems"][name] = _source(src, uploads)
    metadata = {
        k: v
        for k, v in {
            "bpm": args.bpm,
            "key": args.key,
            "time_signature": args.time_signature,
            "tags": args.tag,
        }.items()
        if v
    }
    data = {"message": args.message, "snapshot": json.dumps(snapshot)}
    if metadata:
        data["metadata"] = json.dumps(metadata)
    if args.branch:
        data["branch"] = args.branch
    with ExitStack() as stack:
        files = [("files", (p.name, stack.enter_context(open(p, "rb")))) for p in uploads]
        c = api.json("POST", f"/api/v1/projects/{pid}/commits", data=data, files=files or None)
    slots = (["mix"] if c["mix"] else []) + [s["slot"] for s in c["stems"]]
    _out(args, c, f"[yellow]{c['id'][:8]}[/yellow] {c['message']}: {', '.join(slots)}")


def cmd_diff(args, api: ApiSession) -> None:
    pid = _project_id(api, args.project)
    to, frm = (args.refs[-1], args.refs[0] if len(args.refs) > 1 else None)
    params = {"to": to, **({"from": frm} if frm else {})}
    d = api.json("GET", f"/api/v1/projects/{pid}/diff", params=params)
    lines = [f"{d['from_commit'][:8]} -> {d['to_commit'][:8]}"]
    lines += [f"  [green]+ {a['name']}[/green]" for a in d["added"]]
    lines += [f"  [red]- {r['name']}[/red]" for r in d["removed"]]
    for c in d["changed"]:
        measure = f" (difference {c['difference_lufs']} LUFS)" if c.get("difference_lufs") else ""
        lines.append(f"  [yellow]~ {c['name']}[/yellow]{measure}")
    for k, m in d["metadata"].items():
        if m["changed"]:
            delta = f" ({m['delta']:+g})" if m.get("delta") is not None else ""
            lines.append(f"  {k}: {m['from']} -> {m['to']}{delta}")
    _out(args, d, "\n".join(lines))


def cmd_branch(args, api: ApiSession) -> None:
    pid = _project_id(api, args.project)
    if args.delete:
        api.call("DELETE", f"/api/v1/projects/{pid}/branches/{args.delete}")
        _out(args, {"deleted": args.delete}, f"deleted branch {args.delete}")
    elif args.name:
        b = api.json(
            "POST",
            f"/api/v1/projects/{pid}/branches",
            json={"name": args.name, "start": args.start},
        )
        _out(args, b, f"branch {b['name']} at {b['head'][:8]}")
    else:
        rows = api.json("GET", f"/api/v1/projects/{pid}/branches")
        text = "\n".join(
            f"{'*' if b['is_default'] else ' '} {b['name']} {b['head'][:8]}" for b in rows
        )
        _out(args, rows, text)


def cmd_merge(args, api: ApiSession) -> None:
    pid = _project_id(api, args.project)
    body = {"source": args.source, "target": args.into, "on_conflict": args.on_conflict}
    if args.message:
        body["message"] = args.message
    m = api.json("POST", f"/api/v1/projects/{pid}/merge", json=body)
    note = (
        f" (conflicts resolved with {m['report']['resolved_with']}: "
        + ", ".join(m["report"]["conflicts"])
        + ")"
        if m["report"]["conflicts"]
        else ""
    )
    _out(args, m, f"[yellow]{m['commit']['id'][:8]}[/yellow] {m['commit']['message']}{note}")


def cmd_revert(args, api: ApiSession) -> None:
    pid = _project_id(api, args.project)
    body = {"commit": args.ref, "branch": args.branch, "on_conflict": args.on_conflict}
    m = api.json("POST", f"/api/v1/projects/{pid}/revert", json=body)
    _out(args, m, f"[yellow]{m['commit']['id'][:8]}[/yellow] {m['commit']['message']}")


def cmd_fork(args, api: ApiSession) -> None:
    pid = _project_id(api, args.project)
    p = api.json("POST", f"/api/v1/projects/{pid}/fork", json={"name": args.name})
    _out(args, p, f"forked into [bold]{p['name']}[/bold] {p['id']} ({p['commit_count']} commits)")


def cmd_export(args, api: ApiSession) -> None:
    pid = _project_id(api, args.project)
    out = Path(args.out)
    ref = args.ref or api.json("GET", f"/api/v1/projects/{pid}")["default_branch"]
    # Resolve first, so a bad ref is a sentence rather than a half-written file.
    commit_id = api.json("GET", f"/api/v1/projects/{pid}/commits/{ref}")["id"]
    url = f"/api/v1/projects/{pid}/commits/{commit_id}/export"
    with api.client.stream("GET", url) as r:
        if r.status_code >= 400:
            r.read()
            api.call("GET", url)  # prints the error
            raise SystemExit(2)
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "wb") as fh:
            for chunk in r.iter_bytes():
                fh.write(chunk)
    _out(args, {"path": str(out), "size_bytes": out.stat().st_size}, f"  wrote {out}")


COMMANDS = {
    "new": cmd_new,
    "list": cmd_list,
    "log": cmd_log,
    "commit": cmd_commit,
    "diff": cmd_diff,
    "branch": cmd_branch,
    "merge": cmd_merge,
    "revert": cmd_revert,
    "fork": cmd_fork,
    "export": cmd_export,
}


def cmd_project(args) -> int:
    api = ApiSession(args)
    try:
        COMMANDS[args.action](args, api)
    finally:
        api.close()
    return 0


def cmd_files(args) -> int:
    """``soundstage files``: my library, with the ids that ``file:<id>`` takes."""
    from rich.table import Table

    api = ApiSession(args)
    try:
        params = {"limit": args.limit, **({"kind": args.kind} if args.kind else {})}
        if args.search:
            params["q"] = args.search
        page = api.json("GET", "/api/v1/files", params=params)
    finally:
        api.close()
    if args.json:
        sys.stdout.write(json.dumps(page, indent=2) + "\n")
        return 0
    table = Table("id", "name", "kind", "duration", "size", "pinned", "created")
    for f in page["items"]:
        table.add_row(
            f["id"][:8],
            f["name"],
            f["kind"],
            f"{f['duration_s']:.1f} s" if f.get("duration_s") else "",
            f"{f['size_bytes'] / 1e6:.1f} MB",
            "yes" if f["pinned"] else "",
            f["created_at"][:19],
        )
    console.print(table)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``soundstage project <action>`` and ``soundstage files``."""
    f = sub.add_parser("files", help="my library: every upload and job output")
    f.add_argument("--kind", choices=["audio", "video", "image", "midi", "json", "text", "other"])
    f.add_argument("--search", metavar="TEXT", help="part of the name")
    f.add_argument("--limit", type=int, default=50)
    f.add_argument("--server", metavar="URL", default=os.environ.get("SOUNDSTAGE_SERVER"))
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=cmd_files)

    p = sub.add_parser("project", help="projects: commits, branches, merges, forks, export")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, help_: str, project: bool = True) -> argparse.ArgumentParser:
        a = actions.add_parser(name, help=help_)
        if project:
            a.add_argument("project", help="project id or name")
        a.add_argument("--server", metavar="URL", default=os.environ.get("SOUNDSTAGE_SERVER"))
        a.add_argument("--json", action="store_true", help="print the API's JSON")
        a.set_defaults(func=cmd_project)
        return a

    a = action("new", "create a project", project=False)
    a.add_argument("name")
    a.add_argument("--description", default="")
    a.add_argument("--public", action="store_true")
    a = action("list", "my projects and public ones", project=False)
    a.add_argument("--scope", choices=["all", "mine", "public"], default="all")
    a = action("log", "the history of a branch")
    a.add_argument("--ref", help="branch, branch~N or commit (default: the default branch)")
    a.add_argument("--limit", type=int, default=20)
    a = action("commit", "commit a mix and stems (paths, file:<id> or job:<id>/<output>)")
    a.add_argument("-m", "--message", required=True)
    a.add_argument("--mix", metavar="SRC")
    a.add_argument("--stem", action="append", metavar="NAME=SRC")
    a.add_argument("--remove", action="append", metavar="NAME", help="drop a stem")
    a.add_argument("--from-job", metavar="JOB_ID", help="all outputs of a job: mix and stems")
    a.add_argument("--branch")
    a.add_argument("--bpm", type=float)
    a.add_argument("--key")
    a.add_argument("--time-signature")
    a.add_argument("--tag", action="append")
    a = action("diff", "what changed between two commits")
    a.add_argument("refs", nargs="+", metavar="REF", help="[FROM] TO (default FROM: TO~1)")
    a = action("branch", "list, create or delete branches")
    a.add_argument("name", nargs="?")
    a.add_argument("--from", dest="start", metavar="REF")
    a.add_argument("--delete", metavar="NAME")
    a = action("merge", "merge a branch into another with a merge commit")
    a.add_argument("source")
    a.add_argument("--into", help="target branch (default: the default branch)")
    a.add_argument("--on-conflict", choices=["fail", "ours", "theirs"], default="fail")
    a.add_argument("-m", "--message")
    a = action("revert", "a new commit that undoes one")
    a.add_argument("ref")
    a.add_argument("--branch")
    a.add_argument("--on-conflict", choices=["fail", "ours", "theirs"], default="fail")
    a = action("fork", "copy a project's history into a new project of mine")
    a.add_argument("--name")
    a = action("export", "download a commit as a zip (mix, stems, manifest)")
    a.add_argument("ref", nargs="?", help="default: the default branch")
    a.add_argument("-o", "--out", required=True)
