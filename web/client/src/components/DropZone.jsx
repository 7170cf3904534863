// Drop or choose audio files. The limits are shown before anything is sent, and files that are
// clearly over them are refused here, with the same sentence the server would give.
import { useState } from "preact/hooks";
import { fmtMb } from "../format.js";
import { ErrorNote } from "./ErrorNote.jsx";

export function DropZone({ files, onChange, min, max, limits, id = "files" }) {
  const [over, setOver] = useState(false);
  const [refusal, setRefusal] = useState(null);
  const formats = limits?.formats || ["mp3", "wav", "flac", "m4a", "ogg"];
  const maxMb = limits?.max_file_mb || 50;
  const maxMin = Math.round((limits?.max_duration_s || 900) / 60);

  const add = (list) => {
    const next = [...files];
    let problem = null;
    for (const f of list) {
      const ext = (f.name.split(".").pop() || "").toLowerCase();
      if (!formats.includes(ext) && !(ext === "aiff" || ext === "aif")) {
        problem = { code: "UNSUPPORTED_FORMAT", message: `'${f.name}' is not one of ${formats.join(", ")}.` };
        continue;
      }
      if (f.size > maxMb * 1024 * 1024) {
        problem = { code: "FILE_TOO_LARGE", message: `'${f.name}' is ${fmtMb(f.size)}; the limit is ${maxMb} MB per file.` };
        continue;
      }
      if (next.length >= max) {
        problem = { code: "TOO_MANY_FILES", message: `This job takes at most ${max} file${max > 1 ? "s" : ""}.` };
        break;
      }
      next.push(f);
    }
    setRefusal(problem);
    onChange(next);
  };

  return (
    <div class="field">
      <label
        for={id}
        class={`drop ${over ? "over" : ""}`}
        onDragOver={(e) => {
          e.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={(e) => {
          e.preventDefault();
          setOver(false);
          add([...e.dataTransfer.files]);
        }}
      >
        <span class="drop-title">
          {max > 1 ? `Drop ${min}–${max} audio files here, or choose them` : "Drop an audio file here, or choose one"}
        </span>
        <span class="hint" id={`${id}-limits`}>
          {formats.join(", ")} · up to {maxMb} MB and {maxMin} minutes each
        </span>
      </label>
      <input
        id={id}
        class="file-input"
        type="file"
        multiple={max > 1}
        accept={formats.map((f) => `.${f}`).join(",") + ",audio/*"}
        aria-describedby={`${id}-limits`}
        onChange={(e) => {
          add([...e.target.files]);
          e.target.value = "";
        }}
      />
      <ErrorNote error={refusal} />
      {files.length > 0 && (
        <ol class="file-list" aria-label="Chosen files, in order">
          {files.map((f, i) => (
            <li key={`${f.name}-${i}`}>
              <span>{f.name}</span> <span class="muted">{fmtMb(f.size)}</span>
              <button type="button" class="link" aria-label={`Remove ${f.name}`} onClick={() => onChange(files.filter((_, j) => j !== i))}>
                Remove
              </button>
            </li>
          ))}
        </ol>
      )}
    </div>
  );
}
