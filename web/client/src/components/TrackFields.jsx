// Per-track settings that depend on the uploaded files: mix gain/pan/mute/offset, mashup stems.
const fileName = (files, i) => files[i]?.name || `Track ${i + 1}`;

export function MixTracks({ files, value, onChange }) {
  if (!files.length) return <p class="hint">Add the tracks to mix; each gets its own gain, pan, mute and offset.</p>;
  const rows = files.map((_, i) => ({ gain_db: 0, pan: 0, mute: false, offset_s: 0, ...(value?.[i] || {}) }));
  const set = (i, k, v) => onChange(rows.map((r, j) => (j === i ? { ...r, [k]: v } : r)));
  return (
    <fieldset class="field tracks">
      <legend>Tracks</legend>
      {rows.map((r, i) => (
        <div class="track" key={i} role="group" aria-label={fileName(files, i)}>
          <strong class="track-name">{fileName(files, i)}</strong>
          <label>
            Gain (dB) <input type="number" min={-60} max={24} step={0.5} value={r.gain_db} onInput={(e) => set(i, "gain_db", Number(e.target.value) || 0)} />
          </label>
          <label>
            Pan <input type="range" min={-1} max={1} step={0.1} value={r.pan} aria-valuetext={r.pan === 0 ? "centre" : r.pan < 0 ? `${Math.round(-r.pan * 100)}% left` : `${Math.round(r.pan * 100)}% right`} onInput={(e) => set(i, "pan", Number(e.target.value))} />
          </label>
          <label>
            Offset (s) <input type="number" min={0} max={600} step={0.1} value={r.offset_s} onInput={(e) => set(i, "offset_s", Number(e.target.value) || 0)} />
          </label>
          <label class="inline">
            <input type="checkbox" checked={r.mute} onChange={(e) => set(i, "mute", e.target.checked)} /> Mute
          </label>
        </div>
      ))}
    </fieldset>
  );
}

const STEMS = ["vocals", "drums", "bass", "other"];

/** Which stems of which track go into the mashup; untouched -> chosen automatically. */
export function MashupStems({ files, value, onChange }) {
  if (!files.length) return <p class="hint">Add 1-4 songs; you can choose which stems of each to use.</p>;
  const byTrack = new Map((value || []).map((t) => [t.track, new Set(t.stems)]));
  const toggle = (i, stem, on) => {
    const s = new Set(byTrack.get(i) || []);
    on ? s.add(stem) : s.delete(stem);
    const next = new Map(byTrack);
    if (s.size) next.set(i, s);
    else next.delete(i);
    const list = [...next.entries()].map(([track, st]) => ({ track, stems: STEMS.filter((x) => st.has(x)) }));
    onChange(list.length ? list : undefined);
  };
  return (
    <fieldset class="field tracks">
      <legend>Stems per track (leave empty to let Soundstage choose)</legend>
      {files.map((_, i) => (
        <div class="track" key={i} role="group" aria-label={`Stems of ${fileName(files, i)}`}>
          <strong class="track-name">{fileName(files, i)}</strong>
          <div class="checks">
            {STEMS.map((stem) => (
              <label key={stem}>
                <input type="checkbox" checked={byTrack.get(i)?.has(stem) || false} onChange={(e) => toggle(i, stem, e.target.checked)} /> {stem}
              </label>
            ))}
          </div>
        </div>
      ))}
    </fieldset>
  );
}

export function TrackSelect({ files, value, onChange, label, id }) {
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <select id={id} value={value ?? ""} onChange={(e) => onChange(e.target.value === "" ? undefined : Number(e.target.value))}>
        <option value="">Automatic</option>
        {files.map((_, i) => (
          <option key={i} value={i}>
            {fileName(files, i)}
          </option>
        ))}
      </select>
    </div>
  );
}
