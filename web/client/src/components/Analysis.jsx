// The analysis of a track: tempo, key, time signature, loudness, and the waveform with the beat
// grid, downbeats and sections drawn over it.
import { sectionColor, Waveform } from "./Waveform.jsx";
import { fmtClock, fmtDuration } from "../format.js";

const db = (v, unit) => (v == null ? "—" : `${Number(v).toFixed(1)} ${unit}`);

export function Analysis({ result: r, input }) {
  const l = r.loudness || {};
  return (
    <div class="analysis">
      <dl class="facts">
        <div>
          <dt>Tempo</dt>
          <dd class="tempo">{r.tempo_bpm?.toFixed(1)} BPM</dd>
        </div>
        <div>
          <dt>Key</dt>
          <dd class="key">
            {r.key}
            {r.key_confidence != null && <span class="muted"> ({Math.round(r.key_confidence * 100)}% sure)</span>}
          </dd>
        </div>
        <div>
          <dt>Time signature</dt>
          <dd class="meter">{r.time_signature}</dd>
        </div>
        <div>
          <dt>Loudness</dt>
          <dd class="lufs">{db(l.integrated_lufs, "LUFS")}</dd>
        </div>
        <div>
          <dt>Loudness range</dt>
          <dd>{db(l.lra_lu, "LU")}</dd>
        </div>
        <div>
          <dt>True peak</dt>
          <dd>{db(l.true_peak_dbtp, "dBTP")}</dd>
        </div>
        <div>
          <dt>Duration</dt>
          <dd>{fmtDuration(r.duration_s)}</dd>
        </div>
      </dl>
      {input ? (
        <Waveform url={input.url} title={`${input.filename} with beats, downbeats and sections`} analysis={r} height={120} />
      ) : (
        <p class="muted">Loading the waveform…</p>
      )}
      <p class="legend">
        <span class="swatch beat" /> beat <span class="swatch downbeat" /> downbeat
      </p>
      <ol class="sections" aria-label="Sections">
        {(r.sections || []).map((s, i) => (
          <li key={i}>
            <span class="swatch" style={{ background: sectionColor(s, i) }} />
            {s.label || s.group} {fmtClock(s.start_s)}–{fmtClock(s.end_s)}
          </li>
        ))}
      </ol>
    </div>
  );
}

/** Loudness before and after mastering, with the target. */
export function LoudnessTable({ before, after, target }) {
  const rows = [
    ["Integrated loudness", "integrated_lufs", "LUFS"],
    ["Loudness range", "lra_lu", "LU"],
    ["True peak", "true_peak_dbtp", "dBTP"],
  ];
  return (
    <table class="loudness">
      <caption>Loudness{target != null ? ` (target ${target} LUFS)` : ""}</caption>
      <thead>
        <tr>
          <th scope="col">Measure</th>
          <th scope="col">Before</th>
          <th scope="col">After</th>
        </tr>
      </thead>
      <tbody>
        {rows.map(([label, k, unit]) => (
          <tr key={k} data-measure={k}>
            <th scope="row">{label}</th>
            <td class="before">{db(before?.[k], unit)}</td>
            <td class="after">{db(after?.[k], unit)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
