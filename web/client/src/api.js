// Calls to /api/v1 with the bearer token; errors become ApiError (code + sentence).
import { ApiError } from "./errors.js";
import { accessToken, signOut } from "./session.js";

async function authHeaders(force = false) {
  const token = await accessToken({ force });
  return token ? { Authorization: `Bearer ${token}` } : {};
}

export async function api(path, { method = "GET", json, signal } = {}) {
  for (let attempt = 0; ; attempt++) {
    const headers = await authHeaders(attempt > 0);
    if (json !== undefined) headers["content-type"] = "application/json";
    let r;
    try {
      r = await fetch(`/api/v1${path}`, {
        method,
        headers,
        body: json === undefined ? undefined : JSON.stringify(json),
        signal,
      });
    } catch (e) {
      if (e.name === "AbortError") throw e;
      throw new ApiError(0, { code: "NETWORK", message: "The server could not be reached." });
    }
    const body = r.status === 204 ? null : await r.json().catch(() => null);
    if (r.ok) return body;
    // An expired access token: refresh once, then give up and sign out.
    if (r.status === 401 && attempt === 0) continue;
    if (r.status === 401) await signOut();
    throw new ApiError(r.status, body);
  }
}

/** POST /api/v1/jobs as multipart with upload progress (fetch cannot report upload progress,
 * XMLHttpRequest can). Resolves with the job. */
export async function createJob({ kind, params, files }, onProgress) {
  const headers = await authHeaders();
  const form = new FormData();
  form.append("kind", kind);
  form.append("params", JSON.stringify(params || {}));
  for (const f of files || []) form.append("files", f, f.name);
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/v1/jobs");
    for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
    xhr.setRequestHeader("Idempotency-Key", crypto.randomUUID?.() || String(Math.random()));
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress?.(e.loaded / e.total);
    xhr.onload = () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        /* not JSON: a proxy error page */
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(new ApiError(xhr.status, body));
    };
    xhr.onerror = () =>
      reject(new ApiError(0, { code: "NETWORK", message: "The upload was interrupted." }));
    xhr.send(form);
  });
}

/** Download one output through the API's signed-URL redirect: the request carries the token,
 * the browser then fetches the fresh signed link itself. */
export async function downloadOutput(jobId, name, fallbackUrl) {
  let url = fallbackUrl;
  const ctrl = new AbortController();
  try {
    const r = await fetch(`/api/v1/jobs/${jobId}/download/${encodeURIComponent(name)}`, {
      headers: await authHeaders(),
      signal: ctrl.signal,
    });
    if (!r.ok) throw new ApiError(r.status, await r.json().catch(() => null));
    url = r.url; // the signed URL the redirect led to
    ctrl.abort(); // only the address was wanted, not the bytes
  } catch (e) {
    if (e instanceof ApiError) throw e;
  }
  const a = document.createElement("a");
  a.href = url;
  a.download = "";
  a.rel = "noopener";
  document.body.appendChild(a);
  a.click();
  a.remove();
  return url;
}
