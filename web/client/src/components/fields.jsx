// Plain controls for one JSON-Schema property: select, checkbox(es), number, text, textarea.
import { labelFor } from "../schema.js";

const optLabel = (v) => String(v).replace(/_/g, " ");

export function Field({ f, value, onChange, id }) {
  const label = labelFor(f.name);
  const hint = f.description ? <p class="hint" id={`${id}-hint`}>{f.description}</p> : null;
  const described = f.description ? `${id}-hint` : undefined;

  if (f.type === "array" && f.items?.enum) {
    const chosen = new Set(value || []);
    return (
      <fieldset class="field">
        <legend>{label}</legend>
        <div class="checks">
          {f.items.enum.map((opt) => (
            <label key={opt}>
              <input
                type="checkbox"
                checked={chosen.has(opt)}
                onChange={(e) => {
                  const next = new Set(chosen);
                  e.target.checked ? next.add(opt) : next.delete(opt);
                  onChange(next.size ? f.items.enum.filter((o) => next.has(o)) : undefined);
                }}
              />
              {optLabel(opt)}
            </label>
          ))}
        </div>
        {hint}
      </fieldset>
    );
  }
  if (f.enum) {
    return (
      <div class="field">
        <label for={id}>{label}</label>
        <select
          id={id}
          aria-describedby={described}
          value={value ?? f.default ?? ""}
          onChange={(e) => {
            const raw = e.target.value;
            if (raw === "") return onChange(undefined);
            onChange(f.type === "integer" ? Number(raw) : raw);
          }}
        >
          {(f.nullable || f.default == null) && <option value="">Automatic</option>}
          {f.enum.map((opt) => (
            <option key={opt} value={opt}>
              {optLabel(opt)}
              {opt === f.default ? " (default)" : ""}
            </option>
          ))}
        </select>
        {hint}
      </div>
    );
  }
  if (f.type === "boolean") {
    return (
      <div class="field check">
        <label>
          <input
            type="checkbox"
            aria-describedby={described}
            checked={value ?? f.default ?? false}
            onChange={(e) => onChange(e.target.checked)}
          />
          {label}
        </label>
        {hint}
      </div>
    );
  }
  if (f.type === "number" || f.type === "integer") {
    return (
      <div class="field">
        <label for={id}>{label}</label>
        <input
          id={id}
          type="number"
          inputMode="decimal"
          aria-describedby={described}
          min={f.minimum ?? f.exclusiveMinimum}
          max={f.maximum}
          step={f.type === "integer" ? 1 : "any"}
          placeholder={f.default != null ? String(f.default) : "automatic"}
          value={value ?? ""}
          onInput={(e) => onChange(e.target.value === "" ? undefined : Number(e.target.value))}
        />
        {hint}
      </div>
    );
  }
  if (f.type === "string" && (f.maxLength || 0) > 100) {
    return <LongText f={f} value={value} onChange={onChange} id={id} label={label} />;
  }
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <input id={id} type="text" aria-describedby={described} required={f.required} value={value ?? ""} onInput={(e) => onChange(e.target.value)} />
      {hint}
    </div>
  );
}

/** A textarea with a live character count against the schema's min/max length. */
function LongText({ f, value, onChange, id, label }) {
  const n = (value || "").length;
  const min = f.minLength || 0;
  const max = f.maxLength;
  const ok = n === 0 ? !f.required : n >= min && n <= max;
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <textarea
        id={id}
        rows={4}
        required={f.required}
        maxLength={max}
        aria-describedby={`${id}-count`}
        aria-invalid={!ok && n > 0 ? "true" : undefined}
        value={value ?? ""}
        onInput={(e) => onChange(e.target.value)}
      />
      <p class={`hint count ${ok ? "" : "bad"}`} id={`${id}-count`} aria-live="polite">
        {n} / {max} characters{min ? ` (at least ${min})` : ""}
        {min && n > 0 && n < min ? ` — ${min - n} more to go` : ""}
      </p>
      {f.description && <p class="hint">{f.description}</p>}
    </div>
  );
}
