"""The retention sweeper: Supabase Storage has no lifecycle rules, so we expire files ourselves.

Removes objects older than their bucket's retention (``shared.storage.BUCKETS``) -- except
library files, which ``shared.library.sweep_library`` expires by their own rule -- through the
Storage interface (never by SQL delete, which the storage guard forbids) and drops expired
analysis-cache rows. Runs every ``retention_sweep_s`` locally and on a Modal schedule.
"""

from __future__ import annotations

import logging

from shared.library_files import sweep_library
from shared.services import Services
from shared.storage import BUCKETS

log = logging.getLogger("soundstage.retention")


def sweep(services: Services) -> dict[str, int]:
    removed: dict[str, int] = {}
    for bucket in BUCKETS.values():
        if bucket.retention_days is None:
            continue
        total = 0
        while names := services.storage.expired(bucket.name, bucket.retention_days, limit=500):
            total += services.storage.remove(bucket.name, names)
            if len(names) < 500:
                break
        if total:
            removed[bucket.name] = total
    # Library files (uploads, outputs) follow their own rule: pins and commits keep them.
    if library := sweep_library(services):
        removed["library"] = library
    with services.db.service() as conn:
        cur = conn.execute("delete from analysis_cache where expires_at < now()")
        if cur.rowcount:
            removed["analysis_cache"] = cur.rowcount
    if removed:
        log.info("retention sweep removed %s", removed)
    return removed
