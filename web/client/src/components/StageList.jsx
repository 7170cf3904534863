import { fmtDuration } from "../format.js";

/** Every stage with its status, duration and the engine that ran it. */
export function StageList({ stages, current }) {
  return (
    <table class="stages">
      <caption class="sr-only">Stages</caption>
      <thead>
        <tr>
          <th scope="col">Stage</th>
          <th scope="col">Status</th>
          <th scope="col">Time</th>
          <th scope="col">Engine</th>
        </tr>
      </thead>
      <tbody>
        {stages.map((s) => (
          <tr key={s.name} data-stage={s.name} data-status={s.status} aria-current={s.name === current && s.status === "running" ? "step" : undefined}>
            <th scope="row">{s.name.replace(/_/g, " ")}</th>
            <td>
              <span class={`badge ${s.status}`}>{s.status}</span>
            </td>
            <td>{s.duration_s != null ? fmtDuration(s.duration_s) : "—"}</td>
            <td>{s.engine || "—"}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
