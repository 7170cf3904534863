// A job's live events. EventSource cannot send the Authorization header, so this reads the
// stream with fetch (@microsoft/fetch-event-source). Every event has an increasing id; after a
// dropped connection -- or the server ending the stream on purpose before Modal's 150 s cut --
// we reconnect with Last-Event-ID = the last id we handled, and drop anything at or below it:
// no gap, no duplicate. When the browser says it went offline we do not wait for the open
// connection to time out: the stream is dropped at once, and resumed as soon as it is back.
import { fetchEventSource } from "@microsoft/fetch-event-source";
import { accessToken } from "./session.js";
import { ApiError } from "./errors.js";

const TERMINAL = new Set(["completed", "error"]);
class StreamEnded extends Error {}

/**
 * Follow /api/v1/jobs/{id}/events from the first event on. Calls onEvent({id, type, data}) once
 * per event, in order, and onState("live" | "reconnecting" | "done" | "failed", info).
 * Returns a function that stops listening.
 */
export function followJob(jobId, { onEvent, onState, afterId = 0 }) {
  let lastId = afterId;
  let stopped = false;
  let connects = 0;
  let ctrl = new AbortController(); // one per connection attempt
  let wake = null; // ends the wait before a retry early (back online, or stopped)
  const onOffline = () => ctrl.abort();
  const onOnline = () => wake?.();
  window.addEventListener("offline", onOffline);
  window.addEventListener("online", onOnline);

  function pause(ms) {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  async function run() {
    let delayMs = 500;
    while (!stopped) {
      let finished = false;
      ctrl = new AbortController();
      try {
        const token = await accessToken();
        const headers = { Accept: "text/event-stream" };
        if (token) headers.Authorization = `Bearer ${token}`;
        if (lastId) headers["Last-Event-ID"] = String(lastId);
        await fetchEventSource(`/api/v1/jobs/${jobId}/events`, {
          headers,
          signal: ctrl.signal,
          openWhenHidden: true, // a background tab keeps its log complete
          async onopen(res) {
            if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => null));
            connects += 1;
            delayMs = 500;
            onState?.("live", { connects });
          },
          onmessage(ev) {
            if (!ev.id) return;
            const id = Number(ev.id);
            if (id <= lastId) return; // already handled before a reconnect
            lastId = id;
            let data = {};
            try {
              data = JSON.parse(ev.data || "{}");
            } catch {
              data = { message: ev.data };
            }
            onEvent({ id, type: ev.event || "message", data });
            if (TERMINAL.has(ev.event)) finished = true;
          },
          onclose() {
            throw new StreamEnded();
          },
          onerror(err) {
            throw err; // reconnect in our own loop, with a fresh token and our own cursor
          },
        });
      } catch (err) {
        if (stopped) return;
        if (err instanceof ApiError && [401, 403, 404].includes(err.status)) {
          onState?.("failed", { error: err });
          return;
        }
        if (finished) {
          onState?.("done", { connects });
          return;
        }
        if (!(err instanceof StreamEnded)) {
          onState?.("reconnecting", { connects });
          // Offline: wait for the browser to be back (or the usual back-off, whichever first).
          await pause(navigator.onLine === false ? 60_000 : delayMs);
          delayMs = Math.min(delayMs * 2, 10_000);
        }
      }
    }
  }
  run();
  return () => {
    stopped = true;
    window.removeEventListener("offline", onOffline);
    window.removeEventListener("online", onOnline);
    ctrl.abort();
    wake?.();
  };
}
