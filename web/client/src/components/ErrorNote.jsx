import { explain } from "../errors.js";

/** An error as a person reads it: what went wrong and what to do next (role=alert). */
export function ErrorNote({ error, id }) {
  if (!error) return null;
  return (
    <p class="error" role="alert" id={id} data-code={error.code || ""}>
      {typeof error === "string" ? error : explain(error)}
    </p>
  );
}
