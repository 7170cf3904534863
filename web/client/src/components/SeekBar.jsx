import { fmtClock } from "../format.js";

/** Position slider (keyboard and screen-reader seeking) with the clock beside it. */
export function SeekBar({ time, duration, disabled, label, onSeek }) {
  return (
    <>
      <input
        type="range"
        class="seek"
        min={0}
        max={duration || 0}
        step={0.1}
        value={time}
        disabled={disabled}
        aria-label={label}
        aria-valuetext={`${fmtClock(time)} of ${fmtClock(duration)}`}
        onInput={(e) => onSeek(Number(e.target.value))}
      />
      <span class="clock">
        <span class="time">{fmtClock(time)}</span> / {fmtClock(duration)}
      </span>
    </>
  );
}
