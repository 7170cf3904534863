// Start any job kind: the form is generated from GET /api/v1/kinds (JSON Schema per kind), with
// music-aware controls for the settings a producer expects (genre, tempo, key, mood, tracks).
import { useEffect, useState } from "preact/hooks";
import { api, createJob } from "../api.js";
import { DropZone } from "../components/DropZone.jsx";
import { ErrorNote } from "../components/ErrorNote.jsx";
import { Field } from "../components/fields.jsx";
import { BpmField, GenrePicker, KeyPicker, MoodPicker } from "../components/MusicFields.jsx";
import { MashupStems, MixTracks, TrackSelect } from "../components/TrackFields.jsx";
import { ProgressBar } from "../components/ProgressBar.jsx";
import { Link, navigate } from "../router.jsx";
import { PRIMARY, cleanParams, fields } from "../schema.js";
import { session } from "../session.js";
import { useStore } from "../store.js";

let kindsCache = null;

export function NewJob({ kind }) {
  const [kinds, setKinds] = useState(kindsCache);
  const [error, setError] = useState(null);
  useEffect(() => {
    if (!kindsCache) api("/kinds").then((k) => setKinds((kindsCache = k))).catch(setError);
  }, []);
  const current = kinds?.find((k) => k.kind === kind);
  return (
    <section>
      <h1 tabIndex={-1}>{current ? `New ${current.kind} job` : "Start a new job"}</h1>
      <ErrorNote error={error} />
      {kind && kinds && !current && <ErrorNote error={{ code: "NOT_FOUND", message: `There is no job kind called '${kind}'.` }} />}
      {kinds && (
        <nav aria-label="Job kinds">
          <ul class="kinds">
            {kinds.map((k) => (
              <li key={k.kind}>
                <Link href={`/new/${k.kind}`} class={`kind ${k.kind === kind ? "on" : ""}`} aria-current={k.kind === kind ? "page" : undefined}>
                  <strong>{k.kind}</strong>
                  {!current && <span class="muted">{k.description}</span>}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
      )}
      {current && <JobForm key={current.kind} spec={current} />}
    </section>
  );
}

function JobForm({ spec }) {
  const { config } = useStore(session);
  const [values, setValues] = useState({});
  const [files, setFiles] = useState([]);
  const [error, setError] = useState(null);
  const [upload, setUpload] = useState(null);
  const set = (k) => (v) => setValues((old) => ({ ...old, [k]: v }));
  const all = fields(spec.params_schema);
  const names = new Set(all.map((f) => f.name));
  const music = names.has("genre");
  const genreDefault = all.find((f) => f.name === "genre")?.default;

  const control = (f) => {
    const id = `f-${f.name}`;
    const v = values[f.name];
    if (music && f.name === "genre") return <GenrePicker key={f.name} value={v} required={f.required} fallback={genreDefault} onChange={set("genre")} />;
    if (music && f.name === "bpm")
      return <BpmField key={f.name} genre={values.genre} fallback={genreDefault} value={v} anyBpm={values.allow_any_bpm} onChange={set("bpm")} onAnyBpm={set("allow_any_bpm")} />;
    if (music && f.name === "allow_any_bpm") return null; // part of the tempo field
    if (music && f.name === "key") return <KeyPicker key={f.name} value={v} onChange={set("key")} />;
    if (music && f.name === "mood") return <MoodPicker key={f.name} genre={values.genre} fallback={genreDefault} value={v} onChange={set("mood")} />;
    if (f.name === "tracks" && f.items?.properties?.gain_db) return <MixTracks key={f.name} files={files} value={v} onChange={set("tracks")} />;
    if (f.name === "stems" && f.items?.properties?.track) return <MashupStems key={f.name} files={files} value={v} onChange={set("stems")} />;
    if (f.name === "base_track") return <TrackSelect key={f.name} id={id} label="Instrumental base" files={files} value={v} onChange={set("base_track")} />;
    return <Field key={f.name} id={id} f={f} value={v} onChange={set(f.name)} />;
  };

  const primary = all.filter((f) => PRIMARY.has(f.name) || f.required);
  const more = all.filter((f) => !PRIMARY.has(f.name) && !f.required);

  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    if (files.length < spec.min_files) {
      setError({ code: "MISSING_FILE", message: `A ${spec.kind} job needs ${spec.min_files} file${spec.min_files > 1 ? "s" : ""}.` });
      return;
    }
    setUpload(0);
    try {
      const job = await createJob({ kind: spec.kind, params: cleanParams(values), files }, setUpload);
      navigate(`/jobs/${job.id}`);
    } catch (err) {
      setError(err);
      setUpload(null);
    }
  };

  return (
    <form class="job-form" onSubmit={submit} aria-describedby="kind-about">
      <p id="kind-about">{spec.description}</p>
      {spec.max_files > 0 && (
        <DropZone files={files} onChange={setFiles} min={spec.min_files} max={spec.max_files} limits={config?.limits?.[spec.kind]} />
      )}
      {primary.map(control)}
      {more.length > 0 && (
        <details>
          <summary>More settings</summary>
          {more.map(control)}
        </details>
      )}
      <ErrorNote error={error} id="submit-error" />
      {upload != null && (
        <div role="status" class="uploading">
          {files.length ? "Uploading…" : "Starting…"} <ProgressBar value={upload * 100} label="Upload progress" />
        </div>
      )}
      <div class="row">
        <button type="submit" class="primary" disabled={upload != null}>
          Start {spec.kind}
        </button>
        <Link href="/">Cancel</Link>
      </div>
    </form>
  );
}
