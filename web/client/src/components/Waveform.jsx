// One track as a waveform (wavesurfer.js) with a play button; optionally the analysis drawn on
// it: sections as coloured regions, the beat grid as thin markers and downbeats as strong ones.
import { useEffect, useRef, useState } from "preact/hooks";
import WaveSurfer from "wavesurfer.js";
import RegionsPlugin from "wavesurfer.js/dist/plugins/regions.js";
import { SeekBar } from "./SeekBar.jsx";

export const SECTION_COLORS = ["#4f7cff33", "#ff8a3d33", "#2fbf7133", "#c74dff33", "#ffd23f40", "#ff4f7b33"];

export function sectionColor(section, i) {
  const group = section.group || section.label || String(i);
  const n = [...group].reduce((a, c) => a + c.charCodeAt(0), 0);
  return SECTION_COLORS[n % SECTION_COLORS.length];
}

export function Waveform({ url, title, analysis, height = 96, onReady }) {
  const box = useRef(null);
  const ws = useRef(null);
  const [playing, setPlaying] = useState(false);
  const [ready, setReady] = useState(false);
  const [time, setTime] = useState(0);
  const [duration, setDuration] = useState(0);
  const [failed, setFailed] = useState(false);
  const [drawn, setDrawn] = useState({ beats: 0, downbeats: 0, sections: 0 });

  useEffect(() => {
    const w = WaveSurfer.create({
      container: box.current,
      url,
      height,
      waveColor: "#8a94a6",
      progressColor: "#4f7cff",
      cursorColor: "#1b2235",
      normalize: true,
      dragToSeek: true,
    });
    ws.current = w;
    const regions = analysis ? w.registerPlugin(RegionsPlugin.create()) : null;
    w.on("decode", (d) => {
      setDuration(d);
      setReady(true);
      if (regions && analysis) setDrawn(drawAnalysis(regions, analysis));
      onReady?.(w);
    });
    w.on("timeupdate", setTime);
    w.on("play", () => setPlaying(true));
    w.on("pause", () => setPlaying(false));
    w.on("finish", () => setPlaying(false));
    w.on("error", () => setFailed(true));
    return () => w.destroy();
  }, [url]);

  return (
    <figure
      class="wave"
      data-ready={ready ? "true" : "false"}
      data-playing={playing ? "true" : "false"}
      data-beats={drawn.beats}
      data-downbeats={drawn.downbeats}
      data-sections={drawn.sections}
    >
      <figcaption>{title}</figcaption>
      <div ref={box} class="wave-box" style={{ minHeight: `${height}px` }} aria-hidden="true" />
      <div class="transport">
        <button
          type="button"
          disabled={!ready}
          aria-label={`${playing ? "Pause" : "Play"} ${title}`}
          onClick={() => ws.current?.playPause()}
        >
          {playing ? "Pause" : "Play"}
        </button>
        <SeekBar
          time={time}
          duration={duration}
          disabled={!ready}
          label={`Position in ${title}`}
          onSeek={(t) => ws.current?.setTime(t)}
        />
        {failed && <span class="error">This audio could not be loaded; try the download button.</span>}
      </div>
    </figure>
  );
}

/** Sections as regions, beats as markers (downbeats stronger). Returns what was drawn. */
function drawAnalysis(regions, a) {
  const sections = a.sections || [];
  sections.forEach((s, i) => {
    regions.addRegion({
      start: s.start_s,
      end: s.end_s,
      color: sectionColor(s, i),
      content: s.label || s.group || `Section ${i + 1}`,
      drag: false,
      resize: false,
    });
  });
  const down = new Set((a.downbeats_s || []).map((t) => t.toFixed(3)));
  let beats = 0;
  for (const t of a.beats_s || []) {
    if (down.has(t.toFixed(3))) continue;
    regions.addRegion({ start: t, color: "#1b223540", drag: false, resize: false });
    beats++;
  }
  for (const t of a.downbeats_s || []) {
    regions.addRegion({ start: t, color: "#e8453c", drag: false, resize: false });
  }
  return { beats: beats + down.size, downbeats: down.size, sections: sections.length };
}
