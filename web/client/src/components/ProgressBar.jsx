/** A labelled progress bar (0-100) with the number beside it; fixed size, so no layout jank. */
export function ProgressBar({ value, label }) {
  const v = Math.max(0, Math.min(100, Number(value) || 0));
  return (
    <span class="progress">
      <progress max="100" value={v} aria-label={label} />
      <span class="pct">{Math.round(v)}%</span>
    </span>
  );
}
