// What a completed job made: players for audio (stems together), the analysis drawn, the
// master's before/after, the video, and a download button per output.
import { useEffect, useState } from "preact/hooks";
import { api, downloadOutput } from "../api.js";
import { Analysis, LoudnessTable } from "./Analysis.jsx";
import { ErrorNote } from "./ErrorNote.jsx";
import { StemPlayer } from "./StemPlayer.jsx";
import { Waveform } from "./Waveform.jsx";

const ext = (o) => (o.filename || o.path || "").split(".").pop().toLowerCase();
const isAudio = (o) => ["wav", "mp3", "flac", "ogg", "m4a", "aac"].includes(ext(o)) || (o.content_type || "").startsWith("audio/");
const isVideo = (o) => ext(o) === "mp4" || (o.content_type || "").startsWith("video/");
const isStem = (o) => o.bucket === "stems" || o.meta?.stem;

function useInputs(job, wanted) {
  const [inputs, setInputs] = useState(null);
  useEffect(() => {
    if (wanted) api(`/jobs/${job.id}/inputs`).then(setInputs, () => setInputs([]));
  }, [job.id, wanted]);
  return inputs;
}

export function Results({ job }) {
  const r = job.result || {};
  const outputs = job.outputs || [];
  const stems = outputs.filter((o) => isAudio(o) && isStem(o));
  const audio = outputs.filter((o) => isAudio(o) && !isStem(o));
  const videos = outputs.filter(isVideo);
  const isAnalysis = r.beats_s && r.tempo_bpm != null;
  const isMaster = r.before && r.after;
  const inputs = useInputs(job, isAnalysis || isMaster);
  const note = r.note || r.engine_note;

  return (
    <section class="results" aria-labelledby="results-title">
      <h2 id="results-title">Results</h2>
      {r.engine && (
        <p class="muted">
          Engine: <strong>{r.engine}</strong>
          {note ? ` — ${note}` : ""}
        </p>
      )}
      {isAnalysis && <Analysis result={r} input={inputs?.[0]} />}
      {isMaster && (
        <>
          <h3>Before and after</h3>
          <LoudnessTable before={r.before} after={r.after} target={r.target_lufs} />
          {inputs?.[0] && <Waveform url={inputs[0].url} title={`Before: ${inputs[0].filename}`} height={64} />}
        </>
      )}
      {audio.map((o) => (
        <Waveform key={o.name} url={o.url} title={isMaster ? `After: ${o.filename}` : o.filename} />
      ))}
      {stems.length > 0 && (
        <>
          <h3>Stems</h3>
          <StemPlayer stems={stems} />
        </>
      )}
      {videos.map((o) => (
        <figure key={o.name} class="video">
          <video controls preload="metadata" src={o.url} aria-label={o.filename} />
          <figcaption>{o.filename}</figcaption>
        </figure>
      ))}
      <Downloads job={job} />
      <details>
        <summary>All result data</summary>
        <pre class="json">{JSON.stringify(r, null, 2)}</pre>
      </details>
    </section>
  );
}

function Downloads({ job }) {
  const [error, setError] = useState(null);
  if (!job.outputs?.length) return null;
  return (
    <>
      <h3>Downloads</h3>
      <ul class="downloads">
        {job.outputs.map((o) => (
          <li key={o.name}>
            <button
              type="button"
              data-output={o.name}
              onClick={() => downloadOutput(job.id, o.name, o.url).catch(setError)}
            >
              Download {o.name}
            </button>{" "}
            <span class="muted">
              {o.filename}
              {o.size_bytes ? ` · ${(o.size_bytes / 1024 / 1024).toFixed(1)} MB` : ""}
            </span>
          </li>
        ))}
      </ul>
      <ErrorNote error={error} />
    </>
  );
}
