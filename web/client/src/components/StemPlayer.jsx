// All stems of a job on one transport: play/pause and seek move every stem together, and each
// stem has mute and solo (the Moises-style stem player). The first stem is the clock; the others
// follow it and are nudged back when they drift.
import { useEffect, useRef, useState } from "preact/hooks";
import WaveSurfer from "wavesurfer.js";
import { SeekBar } from "./SeekBar.jsx";

const DRIFT_S = 0.08;

export function StemPlayer({ stems }) {
  const boxes = useRef([]);
  const players = useRef([]);
  const [ready, setReady] = useState(0);
  const [playing, setPlaying] = useState(false);
  const [time, setTime] = useState(0);
  const [duration, setDuration] = useState(0);
  const [muted, setMuted] = useState(() => stems.map(() => false));
  const [solo, setSolo] = useState(null);
  const [mediaMuted, setMediaMuted] = useState(() => stems.map(() => false));

  useEffect(() => {
    const list = stems.map((s, i) =>
      WaveSurfer.create({
        container: boxes.current[i],
        url: s.url,
        height: 48,
        waveColor: "#8a94a6",
        progressColor: "#4f7cff",
        cursorColor: "#1b2235",
        normalize: true,
        interact: true,
      })
    );
    players.current = list;
    const clock = list[0];
    list.forEach((w) => {
      w.on("decode", (d) => {
        setReady((n) => n + 1);
        setDuration((old) => Math.max(old, d));
      });
      // Seeking any stem seeks them all.
      w.on("interaction", (t) => list.forEach((o) => o !== w && o.setTime(t)));
    });
    clock.on("timeupdate", (t) => {
      setTime(t);
      if (!clock.isPlaying()) return;
      for (const o of list) {
        if (o !== clock && Math.abs(o.getCurrentTime() - t) > DRIFT_S) o.setTime(t);
      }
    });
    clock.on("finish", () => {
      list.forEach((o) => o.pause());
      setPlaying(false);
    });
    return () => list.forEach((w) => w.destroy());
  }, [stems.map((s) => s.url).join()]);

  // Audible = not muted, and (no solo, or this is the solo).
  useEffect(() => {
    players.current.forEach((w, i) => w.setMuted(solo != null ? solo !== i : muted[i]));
    // What the audio elements really do (shown to assistive tech and checked by the tests).
    setMediaMuted(players.current.map((w) => w.getMediaElement().muted));
  }, [muted, solo, ready]);

  const allReady = ready >= stems.length;
  const toggle = () => {
    const list = players.current;
    if (playing) {
      list.forEach((w) => w.pause());
      setPlaying(false);
    } else {
      const t = list[0].getCurrentTime();
      list.forEach((w) => w.setTime(t));
      Promise.all(list.map((w) => w.play())).catch(() => setPlaying(false));
      setPlaying(true);
    }
  };

  return (
    <section class="stems" aria-label="Stems" data-ready={allReady ? "true" : "false"} data-playing={playing ? "true" : "false"}>
      <div class="transport">
        <button type="button" class="primary" disabled={!allReady} onClick={toggle} aria-label={playing ? "Pause all stems" : "Play all stems"}>
          {playing ? "Pause" : "Play"} all
        </button>
        <SeekBar
          time={time}
          duration={duration}
          disabled={!allReady}
          label="Position in all stems"
          onSeek={(t) => {
            players.current.forEach((w) => w.setTime(t));
            setTime(t);
          }}
        />
      </div>
      {stems.map((s, i) => {
        const audible = solo != null ? solo === i : !muted[i];
        return (
          <div class={`stem ${audible ? "" : "silent"}`} key={s.name} data-stem={s.name} data-audible={audible ? "true" : "false"} data-muted={mediaMuted[i] ? "true" : "false"}>
            <span class="stem-name">{s.name}</span>
            <button type="button" aria-pressed={muted[i] ? "true" : "false"} aria-label={`Mute ${s.name}`} onClick={() => setMuted(muted.map((m, j) => (j === i ? !m : m)))}>
              M
            </button>
            <button type="button" aria-pressed={solo === i ? "true" : "false"} aria-label={`Solo ${s.name}`} onClick={() => setSolo(solo === i ? null : i)}>
              S
            </button>
            <div ref={(el) => (boxes.current[i] = el)} class="wave-box" aria-hidden="true" />
          </div>
        );
      })}
    </section>
  );
}
