import { fmtDate } from "../format.js";

/** Failed jobs of the last `days` grouped by kind and error code, with the latest message;
 * "Show" filters the job list to that group. */
export function FailureSummary({ groups, days, onPick }) {
  return (
    <>
      <h2 id="failures">Failures in the last {days} days</h2>
      {groups && groups.length === 0 && <p class="empty">No failed jobs in the last {days} days.</p>}
      {groups && groups.length > 0 && (
        <table class="failures" aria-labelledby="failures">
          <thead>
            <tr>
              <th scope="col">Kind</th>
              <th scope="col">Code</th>
              <th scope="col">Count</th>
              <th scope="col">Latest message</th>
              <th scope="col">Last</th>
              <th scope="col">
                <span class="sr-only">Jobs</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {groups.map((g) => (
              <tr key={`${g.kind}-${g.code}`} data-kind={g.kind} data-code={g.code || ""}>
                <td data-label="Kind">{g.kind}</td>
                <td data-label="Code">
                  <code class="code">{g.code || "—"}</code>
                </td>
                <td data-label="Count">{g.count}</td>
                <td data-label="Latest message" class="err-msg">
                  {g.last_message || "—"}
                </td>
                <td data-label="Last">{fmtDate(g.last_at)}</td>
                <td class="actions">
                  <button type="button" class="link" onClick={() => onPick(g)}
                    aria-label={`Show failed ${g.kind} jobs with ${g.code || "no code"}`}>
                    Show
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
