// Numbers with their units, the way a person reads them.
export const fmtDuration = (s) => {
  if (s == null || Number.isNaN(s)) return "—";
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s % 60)} s`;
};
export const fmtClock = (s) => {
  const t = Math.max(0, s || 0);
  return `${Math.floor(t / 60)}:${String(Math.floor(t % 60)).padStart(2, "0")}`;
};
export const fmtUsd = (v) =>
  v == null ? "—" : `$${Number(v).toFixed(Number(v) === 0 || v >= 1 ? 2 : 4)}`;
export const fmtMb = (bytes) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
export const fmtDate = (iso) => (iso ? new Date(iso).toLocaleString() : "—");
export const titleCase = (s) =>
  String(s || "")
    .replace(/_/g, " ")
    .replace(/\b\w/, (c) => c.toUpperCase());
