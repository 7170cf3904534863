// My jobs, newest first, paged; refreshed every 2 s while one is queued or running.
import { useEffect, useState } from "preact/hooks";
import { api } from "../api.js";
import { ErrorNote } from "../components/ErrorNote.jsx";
import { ProgressBar } from "../components/ProgressBar.jsx";
import { fmtDate, fmtUsd } from "../format.js";
import { Link } from "../router.jsx";

const PAGE = 10;
const ACTIVE = new Set(["queued", "processing"]);

export function Dashboard() {
  const [offset, setOffset] = useState(0);
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const [tick, setTick] = useState(0);

  useEffect(() => {
    let alive = true;
    let timer;
    const load = async () => {
      try {
        const d = await api(`/jobs?limit=${PAGE}&offset=${offset}`);
        if (!alive) return;
        setData(d);
        setError(null);
        const busy = d.items.some((j) => ACTIVE.has(j.status));
        timer = setTimeout(load, busy ? 2000 : 10000);
      } catch (e) {
        if (!alive) return;
        setError(e);
        timer = setTimeout(load, 10000);
      }
    };
    load();
    return () => {
      alive = false;
      clearTimeout(timer);
    };
  }, [offset, tick]);

  // Delete asks first, inline (a native confirm() dialog is easy to hit by accident).
  const [confirming, setConfirming] = useState(null);
  const act = async (job, what) => {
    try {
      if (what === "delete") await api(`/jobs/${job.id}`, { method: "DELETE" });
      else await api(`/jobs/${job.id}/cancel`, { method: "POST" });
      setConfirming(null);
      setTick((t) => t + 1);
    } catch (e) {
      setError(e);
    }
  };

  return (
    <section>
      <div class="row-between">
        <h1 tabIndex={-1}>Your jobs</h1>
        <Link href="/new" class="button">Start a new job</Link>
      </div>
      <ErrorNote error={error} />
      {data && data.total === 0 && (
        <p class="empty">
          No jobs yet. <Link href="/new">Start one</Link>: analyse a track, split stems, master, or
          generate a beat.
        </p>
      )}
      {data && data.items.length > 0 && (
        <ul class="jobs" aria-label="Jobs, newest first">
          {data.items.map((j) => (
            <li class="job-row" key={j.id} data-status={j.status}>
              <Link href={`/jobs/${j.id}`} class="job-kind">
                {j.kind}
              </Link>
              <span class={`badge ${j.status}`}>{j.status}</span>
              <ProgressBar value={j.progress} label={`${j.kind} progress`} />
              <span class="muted">{fmtDate(j.created_at)}</span>
              <span class="muted">{fmtUsd(j.costs?.total_usd)}</span>
              <span class="actions">
                {ACTIVE.has(j.status) ? (
                  <button type="button" onClick={() => act(j, "cancel")} aria-label={`Cancel ${j.kind} job`}>
                    Cancel
                  </button>
                ) : confirming === j.id ? (
                  <span role="group" aria-label={`Delete this ${j.kind} job and its files?`}>
                    Delete?{" "}
                    <button type="button" class="danger" onClick={() => act(j, "delete")}>
                      Yes, delete
                    </button>{" "}
                    <button type="button" onClick={() => setConfirming(null)}>
                      Keep
                    </button>
                  </span>
                ) : (
                  <button type="button" class="danger" onClick={() => setConfirming(j.id)} aria-label={`Delete ${j.kind} job`}>
                    Delete
                  </button>
                )}
              </span>
            </li>
          ))}
        </ul>
      )}
      {data && data.total > PAGE && (
        <nav class="pager" aria-label="Pages">
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
