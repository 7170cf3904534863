import { useState } from "preact/hooks";

export const NO_FILTER = { status: "", kind: "", error_code: "" };
const STATUSES = ["queued", "processing", "completed", "failed", "canceled"];

/** Status, kind and error-code filters for the operator's job list; applied on submit (a
 * select that reloads the list on every arrow key would be hard to use from a keyboard). */
export function AdminFilters({ value, kinds, onApply }) {
  const [f, setF] = useState(value);
  const set = (k) => (e) => setF({ ...f, [k]: e.currentTarget.value });
  const submit = (e) => {
    e.preventDefault();
    onApply({ ...f, error_code: f.error_code.trim().toUpperCase() });
  };
  return (
    <form class="filters" onSubmit={submit} aria-label="Filter jobs">
      <div class="field">
        <label for="f-status">Status</label>
        <select id="f-status" value={f.status} onChange={set("status")}>
          <option value="">Any status</option>
          {STATUSES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      </div>
      <div class="field">
        <label for="f-kind">Kind</label>
        <select id="f-kind" value={f.kind} onChange={set("kind")}>
          <option value="">Any kind</option>
          {[...new Set([...kinds, f.kind].filter(Boolean))].map((k) => (
            <option key={k} value={k}>
              {k}
            </option>
          ))}
        </select>
      </div>
      <div class="field">
        <label for="f-code">Error code</label>
        <input id="f-code" value={f.error_code} onInput={set("error_code")} placeholder="e.g. WORKER_LOST"
          autocomplete="off" spellcheck={false} />
      </div>
      <div class="filter-actions">
        <button type="submit" class="primary">
          Apply filters
        </button>
        <button type="button" onClick={() => onApply(NO_FILTER)}>
          Clear
        </button>
      </div>
    </form>
  );
}
