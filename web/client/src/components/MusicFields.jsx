// Genre picker (from /api/v1/genres, with its BPM range and moods), tempo, key and mood.
import { useEffect, useState } from "preact/hooks";
import { api } from "../api.js";

const TONICS = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"];
let genresCache = null;

export function useGenres() {
  const [genres, setGenres] = useState(genresCache);
  useEffect(() => {
    if (!genresCache) api("/genres").then((g) => setGenres((genresCache = g))).catch(() => setGenres([]));
  }, []);
  return genres;
}

export function GenrePicker({ value, onChange, required, fallback, id = "f-genre" }) {
  const genres = useGenres();
  const g = genres?.find((x) => x.slug === value);
  return (
    <div class="field">
      <label for={id}>Genre</label>
      <select id={id} required={required} value={value ?? ""} aria-describedby={`${id}-about`} onChange={(e) => onChange(e.target.value || undefined)}>
        {!required && <option value="">{fallback ? `Default (${fallback})` : "Automatic"}</option>}
        {required && <option value="">Choose a genre…</option>}
        {(genres || []).map((x) => (
          <option key={x.slug} value={x.slug}>
            {x.name} ({x.bpm_range[0]}–{x.bpm_range[1]} BPM)
          </option>
        ))}
      </select>
      <p class="hint" id={`${id}-about`}>
        {g
          ? `${g.bpm_range[0]}–${g.bpm_range[1]} BPM, usually ${g.default_bpm}; ${g.characteristics.join(", ")}.`
          : genres
            ? `${genres.length} genres, each with its own tempo range and moods.`
            : "Loading genres…"}
      </p>
    </div>
  );
}

export function BpmField({ genre: chosen, fallback, value, anyBpm, onChange, onAnyBpm, id = "f-bpm" }) {
  const genres = useGenres();
  const genre = chosen || fallback;
  const g = genres?.find((x) => x.slug === genre);
  const [lo, hi] = g && !anyBpm ? g.bpm_range : [40, 240];
  return (
    <div class="field">
      <label for={id}>Tempo (BPM)</label>
      <input
        id={id}
        type="number"
        min={lo}
        max={hi}
        step="any"
        placeholder={g ? String(g.default_bpm) : "automatic"}
        aria-describedby={`${id}-range`}
        value={value ?? ""}
        onInput={(e) => onChange(e.target.value === "" ? undefined : Number(e.target.value))}
      />
      <p class="hint" id={`${id}-range`}>
        {g && !anyBpm ? `${g.name}: ${lo}–${hi} BPM.` : "Any tempo from 40 to 240 BPM."}{" "}
        <label class="inline">
          <input type="checkbox" checked={!!anyBpm} onChange={(e) => onAnyBpm(e.target.checked || undefined)} /> allow a tempo outside the genre's range
        </label>
      </p>
    </div>
  );
}

/** Tonic + mode -> "A minor" (the API also reads "Am", "F#"). Empty: the genre's own key. */
export function KeyPicker({ value, onChange, id = "f-key" }) {
  const [tonic, mode] = (value || "").split(" ");
  const set = (t, m) => onChange(t ? `${t} ${m || "minor"}` : undefined);
  return (
    <fieldset class="field">
      <legend>Key</legend>
      <div class="pair">
        <label for={`${id}-tonic`} class="sr-only">Key note</label>
        <select id={`${id}-tonic`} value={tonic || ""} onChange={(e) => set(e.target.value, mode)}>
          <option value="">Automatic</option>
          {TONICS.map((t) => (
            <option key={t} value={t}>
              {t}
            </option>
          ))}
        </select>
        <label for={`${id}-mode`} class="sr-only">Key mode</label>
        <select id={`${id}-mode`} value={mode || "minor"} disabled={!tonic} onChange={(e) => set(tonic, e.target.value)}>
          <option value="minor">minor</option>
          <option value="major">major</option>
        </select>
      </div>
    </fieldset>
  );
}

export function MoodPicker({ genre, fallback, value, onChange, id = "f-mood" }) {
  const genres = useGenres();
  const g = genres?.find((x) => x.slug === (genre || fallback));
  return (
    <div class="field">
      <label for={id}>Mood</label>
      <select id={id} value={value ?? ""} onChange={(e) => onChange(e.target.value || undefined)}>
        <option value="">Automatic</option>
        {(g?.moods || []).map((m) => (
          <option key={m} value={m}>
            {m}
          </option>
        ))}
      </select>
    </div>
  );
}
