import { fmtDate, fmtUsd } from "../format.js";

const RETRYABLE = new Set(["failed", "canceled"]);
const ACTIVE = new Set(["queued", "processing"]);

/** Every user's jobs as a table (stacked cards on a phone); Retry for failed or canceled jobs,
 * Cancel for queued or running ones. */
export function AdminJobTable({ items, busy, onAct }) {
  return (
    <table class="admin-jobs">
      <caption class="sr-only">Jobs of every user, newest first</caption>
      <thead>
        <tr>
          <th scope="col">Owner</th>
          <th scope="col">Kind</th>
          <th scope="col">Status</th>
          <th scope="col">Error</th>
          <th scope="col">Created</th>
          <th scope="col">Cost</th>
          <th scope="col">
            <span class="sr-only">Actions</span>
          </th>
        </tr>
      </thead>
      <tbody>
        {items.map((j) => {
          const who = `${j.kind} job of ${j.user_email || j.user_id}`;
          return (
            <tr key={j.id} data-job-id={j.id} data-status={j.status}>
              <td data-label="Owner" class="owner">
                {j.user_email || j.user_id}
              </td>
              <td data-label="Kind">
                <span title={j.id}>{j.kind}</span>
              </td>
              <td data-label="Status">
                <span class={`badge ${j.status}`}>{j.status}</span>
              </td>
              <td data-label="Error">
                {j.error ? (
                  <span>
                    <code class="code">{j.error.code}</code>
                    {j.error.message && <span class="muted err-msg">{j.error.message}</span>}
                  </span>
                ) : (
                  <span class="muted">—</span>
                )}
              </td>
              <td data-label="Created">{fmtDate(j.created_at)}</td>
              <td data-label="Cost">{fmtUsd(j.total_cost_usd)}</td>
              <td class="actions">
                {RETRYABLE.has(j.status) && (
                  <button type="button" disabled={busy === j.id} onClick={() => onAct(j, "retry")}
                    aria-label={`Retry ${who}`}>
                    Retry
                  </button>
                )}
                {ACTIVE.has(j.status) && (
                  <button type="button" class="danger" disabled={busy === j.id} onClick={() => onAct(j, "cancel")}
                    aria-label={`Cancel ${who}`}>
                    Cancel
                  </button>
                )}
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}
