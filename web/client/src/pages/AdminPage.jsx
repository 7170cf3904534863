// The operator's view of the queue: every user's jobs (filtered, paged), the failures of the
// last 7 days by kind and code, and Retry / Cancel. The server decides who is an operator; a
// 403 ADMIN_REQUIRED becomes a plain "operators only" page.
import { useEffect, useState } from "preact/hooks";
import { api } from "../api.js";
import { AdminFilters, NO_FILTER } from "../components/AdminFilters.jsx";
import { AdminJobTable } from "../components/AdminJobTable.jsx";
import { ErrorNote } from "../components/ErrorNote.jsx";
import { FailureSummary } from "../components/FailureSummary.jsx";
import { Link } from "../router.jsx";
import { session } from "../session.js";

const PAGE = 20;
const DAYS = 7;

export function AdminPage() {
  const [filters, setFilters] = useState(NO_FILTER);
  const [offset, setOffset] = useState(0);
  const [data, setData] = useState(null);
  const [failures, setFailures] = useState(null);
  const [kinds, setKinds] = useState([]);
  const [error, setError] = useState(null);
  const [denied, setDenied] = useState(false);
  const [busy, setBusy] = useState(null);
  const [done, setDone] = useState("");
  const [tick, setTick] = useState(0);

  useEffect(() => {
    api("/kinds")
      .then((k) => setKinds(k.map((x) => x.kind)))
      .catch(() => setKinds([]));
  }, []);

  useEffect(() => {
    let alive = true;
    const q = new URLSearchParams({ limit: String(PAGE), offset: String(offset) });
    for (const [k, v] of Object.entries(filters)) if (v) q.set(k, v);
    Promise.all([api(`/admin/jobs?${q}`), api(`/admin/failures?days=${DAYS}`)])
      .then(([jobs, fails]) => {
        if (!alive) return;
        setData(jobs);
        setFailures(fails.groups);
        setError(null);
      })
      .catch((e) => {
        if (!alive) return;
        if (e.status === 403 && e.code === "ADMIN_REQUIRED") setDenied(true);
        else setError(e);
      });
    return () => {
      alive = false;
    };
  }, [filters, offset, tick]);

  const apply = (f) => {
    setFilters(f);
    setOffset(0);
  };

  const act = async (job, what) => {
    setBusy(job.id);
    setDone("");
    try {
      const j = await api(`/admin/jobs/${job.id}/${what}`, { method: "POST" });
      const whose = `the ${j.kind} job of ${j.user_email || j.user_id}`;
      if (what === "retry") setDone(`Queued again: ${whose} (now ${j.status}).`);
      else if (j.status === "canceled") setDone(`Canceled: ${whose}.`);
      else setDone(`Cancel requested: ${whose} stops at its next step.`);
      setError(null);
      setTick((t) => t + 1);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(null);
    }
  };

  if (denied) {
    const email = session.get().user?.email || "EMAIL";
    return (
      <section>
        <h1 tabIndex={-1}>Operators only</h1>
        <p class="error" role="alert" data-code="ADMIN_REQUIRED">
          This page is for operators only, and your account is not one. An operator can give you
          the role with <code>soundstage admin grant {email}</code>; it takes effect when you sign in
          again.
        </p>
        <p>
          <Link href="/">Go to your jobs</Link>
        </p>
      </section>
    );
  }

  return (
    <section class="admin">
      <div class="row-between">
        <h1 tabIndex={-1}>Operator view</h1>
        <button type="button" onClick={() => setTick((t) => t + 1)}>
          Refresh
        </button>
      </div>
      <ErrorNote error={error} />
      <p class="note" role="status" aria-live="polite">
        {done}
      </p>
      <FailureSummary
        groups={failures}
        days={DAYS}
        onPick={(g) => apply({ status: "failed", kind: g.kind, error_code: g.code || "" })}
      />
      <h2 id="all-jobs">Every user's jobs</h2>
      <AdminFilters key={JSON.stringify(filters)} value={filters} kinds={kinds} onApply={apply} />
      {data && data.total === 0 && <p class="empty">No jobs match these filters.</p>}
      {data && data.items.length > 0 && <AdminJobTable items={data.items} busy={busy} onAct={act} />}
      {data && data.total > PAGE && (
        <nav class="pager" aria-label="Pages of jobs">
          <button type="button" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>
            Newer
          </button>
          <span>
            {offset + 1}–{Math.min(offset + PAGE, data.total)} of {data.total}
          </span>
          <button type="button" disabled={data.next_offset == null} onClick={() => setOffset(data.next_offset)}>
            Older
          </button>
        </nav>
      )}
    </section>
  );
}
