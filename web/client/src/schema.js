// Reading the kind registry's JSON Schema (pydantic's output) into what a form needs.

const UNITS = { s: "s", db: "dB", hz: "Hz", kbps: "kbps", lufs: "LUFS", usd: "USD", bpm: "BPM" };
const WORDS = { bpm: "Tempo", lufs: "Target loudness", target: "Target" };

/** "duration_s" -> "Duration (s)", "gain_db" -> "Gain (dB)", "bpm" -> "Tempo (BPM)". */
export function labelFor(name) {
  if (name === "bpm") return "Tempo (BPM)";
  const parts = name.split("_");
  let unit = "";
  if (parts.length > 1 && UNITS[parts.at(-1)]) unit = UNITS[parts.pop()];
  let text = parts.map((p) => WORDS[p] || p).join(" ");
  text = text.charAt(0).toUpperCase() + text.slice(1);
  return unit ? `${text} (${unit})` : text;
}

/** Resolve $ref and collapse pydantic's "anyOf: [X, null]" into X with nullable=true. */
export function normalize(prop, defs = {}) {
  let p = prop || {};
  if (p.$ref) p = { ...defs[p.$ref.split("/").pop()], ...p, $ref: undefined };
  if (Array.isArray(p.anyOf)) {
    const real = p.anyOf.filter((x) => x.type !== "null");
    const nullable = real.length < p.anyOf.length;
    if (real.length === 1) {
      const { anyOf, ...rest } = p;
      p = { ...normalize(real[0], defs), ...rest, nullable };
    }
  }
  if (p.items) p = { ...p, items: normalize(p.items, defs) };
  return p;
}

export function fields(schema) {
  const defs = schema.$defs || {};
  const required = new Set(schema.required || []);
  return Object.entries(schema.properties || {}).map(([name, prop]) => ({
    name,
    required: required.has(name),
    ...normalize(prop, defs),
  }));
}

// Settings most people change; the rest go under "More settings".
export const PRIMARY = new Set([
  "genre", "bpm", "key", "mood", "duration_s", "prompt", "preset", "target_lufs", "vibe",
  "profile", "stems", "tracks", "output_format", "start_s", "end_s", "weight", "mode",
]);

/** Drop empty values, so the server applies its own defaults. */
export function cleanParams(values) {
  const out = {};
  for (const [k, v] of Object.entries(values)) {
    if (v === "" || v === undefined || v === null) continue;
    if (typeof v === "number" && Number.isNaN(v)) continue;
    out[k] = v;
  }
  return out;
}
