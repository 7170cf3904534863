"""Operator commands: ``soundstage admin grant EMAIL`` / ``revoke EMAIL`` / ``list``.

The admin role is Supabase's server-side ``app_metadata.role`` ("admin"), kept in
``auth.users.raw_app_meta_data`` of the database the settings point at (the embedded one, or
Supabase's through ``SOUNDSTAGE_DATABASE_URL``); users cannot write it themselves. The role is
in the user's next access token (after logging in again or refreshing).
"""

from __future__ import annotations

import argparse

from cli.console import console
from shared.errors import NotFound


def set_admin(db, email: str, admin: bool) -> dict:
    """Grant or revoke the role; returns the user's id, email and app_metadata."""
    email = (email or "").strip().lower()
    with db.service() as conn:
        if admin:
            sql = (
                "update auth.users set raw_app_meta_data = coalesce(raw_app_meta_data, '{}'::jsonb)"
                ' || \'{"role": "admin"}\'::jsonb, updated_at = now() where email = %s'
            )
        else:
            sql = (
                "update auth.users set raw_app_meta_data = coalesce(raw_app_meta_data, '{}'::jsonb)"
                " - 'role', updated_at = now() where email = %s"
            )
        row = conn.execute(sql + " returning id, email, raw_app_meta_data", (email,)).fetchone()
    if row is None:
        raise NotFound(f"No user with the email {email}.", code="USER_NOT_FOUND")
    return row


def cmd_admin(args: argparse.Namespace) -> int:
    from shared.services import open_services

    services = open_services()
    try:
        if args.action == "list":
            with services.db.service() as conn:
                rows = conn.execute(
                    "select email from auth.users where raw_app_meta_data->>'role' = 'admin'"
                    " order by email"
                ).fetchall()
            for r in rows:
                print(r["email"])
            return 0
        try:
            row = set_admin(services.db, args.email, args.action == "grant")
        except NotFound as e:
            console.print(f"[red]{e.code}[/red]: {e.message}")
            return 2
        verb = "is now an admin" if args.action == "grant" else "is no longer an admin"
        console.print(f"{row['email']} {verb} (from their next login or token refresh).")
        return 0
    finally:
        services.close()


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``admin`` on the ``soundstage`` command."""
    p = sub.add_parser("admin", help="grant or revoke the operator (admin) role")
    p.add_argument("action", choices=["grant", "revoke", "list"])
    p.add_argument("email", nargs="?", default="", help="the user's email (grant/revoke)")
    p.set_defaults(func=cmd_admin)
