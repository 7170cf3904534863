// One job: stages, overall progress, the live message log and running cost (SSE), queue
// position while queued, and the results once it has completed.
import { useEffect, useReducer, useState } from "preact/hooks";
import { api } from "../api.js";
import { ErrorNote } from "../components/ErrorNote.jsx";
import { ProgressBar } from "../components/ProgressBar.jsx";
import { Results } from "../components/Results.jsx";
import { StageList } from "../components/StageList.jsx";
import { fmtDate, fmtDuration, fmtUsd } from "../format.js";
import { Link } from "../router.jsx";
import { followJob } from "../sse.js";

const ACTIVE = new Set(["queued", "processing"]);

// The job as the stream updates it: the snapshot from GET, then every event applied in order.
function reduce(state, action) {
  if (action.type === "snapshot") return { ...state, job: action.job };
  if (action.type !== "event" || !state.job) return state;
  const { type, data, id } = action.event;
  const job = { ...state.job };
  const log = [...state.log, { id, type, data }];
  if (type === "stage_update") {
    job.stages = job.stages.map((s) =>
      s.name === data.stage
        ? { ...s, status: data.status, engine: data.engine ?? s.engine, duration_s: data.duration_s ?? s.duration_s }
        : s
    );
    job.current_stage = data.stage;
    if (job.status === "queued") job.status = "processing";
  }
  if (data.progress != null) job.progress = Math.max(job.progress || 0, data.progress);
  if (type === "cost_update") job.costs = { ...job.costs, total_usd: data.total_cost_usd };
  if (type === "completed") job.progress = 100;
  return { ...state, job, log };
}

export function JobPage({ id }) {
  const [state, dispatch] = useReducer(reduce, { job: null, log: [] });
  const [error, setError] = useState(null);
  const [stream, setStream] = useState({ state: "connecting", connects: 0 });
  const [refresh, setRefresh] = useState(0);
  const job = state.job;

  // Snapshot (and re-read after a terminal event, for outputs and results).
  useEffect(() => {
    let alive = true;
    api(`/jobs/${encodeURIComponent(id)}`)
      .then((j) => alive && dispatch({ type: "snapshot", job: j }))
      .catch((e) => alive && setError(e));
    return () => (alive = false);
  }, [id, refresh]);

  // The event stream, from the first event (so a reload rebuilds the whole log).
  useEffect(() => {
    if (!job) return;
    return followJob(id, {
      onEvent: (ev) => {
        dispatch({ type: "event", event: ev });
        if (ev.type === "completed" || ev.type === "error") setRefresh((n) => n + 1);
      },
      onState: (s, info) => setStream({ state: s, connects: info?.connects || 0 }),
    });
  }, [id, !!job]);

  // While queued, nothing streams: re-read the queue position and ETA every 3 s.
  useEffect(() => {
    if (job?.status !== "queued") return;
    const t = setTimeout(() => setRefresh((n) => n + 1), 3000);
    return () => clearTimeout(t);
  }, [job]);

  if (error) {
    const missing = error.status === 404;
    return (
      <section>
        <h1 tabIndex={-1}>{missing ? "Job not found" : "This job could not be loaded"}</h1>
        <ErrorNote error={missing ? { code: "JOB_NOT_FOUND", message: "There is no job with this address in your account." } : error} />
        <p>
          <Link href="/">Back to your jobs</Link>
        </p>
      </section>
    );
  }
  if (!job) return <p role="status">Loading the job…</p>;

  const cancel = () => api(`/jobs/${id}/cancel`, { method: "POST" }).then(() => setRefresh((n) => n + 1), setError);

  return (
    <section class="job" data-status={job.status}>
      <div class="row-between">
        <h1 tabIndex={-1}>
          {job.kind} <span class={`badge ${job.status}`}>{job.status}</span>
        </h1>
        {ACTIVE.has(job.status) && (
          <button type="button" class="danger" onClick={cancel}>
            Cancel job
          </button>
        )}
      </div>
      <p class="muted">
        Created {fmtDate(job.created_at)} · cost so far <span class="cost">{fmtUsd(job.costs?.total_usd)}</span>
        {job.costs?.estimated_usd != null && ` (estimated ${fmtUsd(job.costs.estimated_usd)})`}
      </p>
      <ProgressBar value={job.progress} label="Job progress" />
      {job.status === "queued" && (
        <p class="queue" role="status">
          Waiting in the queue: position {job.queue_position || 1}
          {job.estimated_duration_s ? `; it should take about ${fmtDuration(job.estimated_duration_s)} once it starts` : ""}.
        </p>
      )}
      {job.status === "processing" && job.estimated_remaining_s > 0 && (
        <p class="muted">About {fmtDuration(job.estimated_remaining_s)} left.</p>
      )}
      {job.error && <ErrorNote error={job.error} />}
      <StageList stages={job.stages} current={job.current_stage} />
      <h2>Log</h2>
      <p class="muted stream-state" data-state={stream.state} data-connects={stream.connects}>
        {stream.state === "reconnecting" ? "Connection lost; reconnecting…" : stream.state === "live" ? "Live" : ""}
      </p>
      {state.log.length === 0 && <p class="muted">No events yet: they appear here as the job runs.</p>}
      <ol class="log" hidden={state.log.length === 0} aria-live="polite" aria-relevant="additions">
        {state.log.map((e) => (
          <li key={e.id} data-event-id={e.id} data-type={e.type}>
            {describe(e)}
          </li>
        ))}
      </ol>
      {job.status === "completed" && <Results job={job} />}
    </section>
  );
}

function describe({ type, data }) {
  const stage = data.stage ? `${data.stage.replace(/_/g, " ")}: ` : "";
  if (type === "stage_update") {
    const bits = [data.status, data.engine && `engine ${data.engine}`, data.duration_s != null && fmtDuration(data.duration_s)];
    return `${stage}${bits.filter(Boolean).join(", ")}`;
  }
  if (type === "progress") return `${stage}${Math.round(data.progress)}%${data.message ? ` — ${data.message}` : ""}`;
  if (type === "cost_update") return `${stage}${data.provider} ${fmtUsd(data.cost_usd)} (total ${fmtUsd(data.total_cost_usd)})`;
  if (type === "completed") return `Completed. Total cost ${fmtUsd(data.total_cost_usd)}.`;
  if (type === "error") return `Failed: ${data.message}`;
  return `${stage}${data.message || ""}`;
}
