// API error codes turned into what a person should do next. The API's own `message` is already
// a sentence about what went wrong (it names the file, the limit...); we add the next step.
const NEXT_STEP = {
  UNSUPPORTED_FORMAT: "Export the track as MP3, WAV or FLAC and upload that instead.",
  UNDECODABLE_AUDIO: "The file may be damaged or not audio at all; export it again and retry.",
  TRUNCATED_AUDIO: "The file seems cut off; export or download it again.",
  EMPTY_AUDIO: "Choose a file that contains audio.",
  SILENT_AUDIO: "The track is silent; choose one with sound in it.",
  INVALID_AUDIO: "Choose a different audio file.",
  TOO_LONG: "Trim the track to the limit and upload it again.",
  TOO_SHORT: "Use a track at least a second long.",
  FILE_TOO_LARGE: "Upload a compressed MP3 or a shorter excerpt.",
  QUOTA_EXCEEDED: "Delete old jobs from your dashboard to free space.",
  MISSING_FILE: "Add the file(s) this kind of job needs.",
  TOO_MANY_FILES: "Remove some files and try again.",
  INVALID_PARAMS: "Check the highlighted setting and try again.",
  BAD_PROMPT: "Write a prompt between 50 and 500 characters.",
  UNKNOWN_GENRE: "Pick a genre from the list.",
  BPM_OUT_OF_RANGE: "Choose a tempo inside the genre's range, or allow any tempo.",
  BAD_KEY: "Pick a key from the list (for example C minor or F# major).",
  RATE_LIMITED: "Wait a little and start the job again.",
  AUTH_REQUIRED: "Sign in to continue.",
  TOKEN_EXPIRED: "Your session ended; sign in again.",
  INVALID_TOKEN: "Your session ended; sign in again.",
  INVALID_CREDENTIALS: "Check the email and password, or reset your password.",
  EMAIL_TAKEN: "Sign in instead, or reset your password if you forgot it.",
  WEAK_PASSWORD: "Choose a longer password.",
  INVALID_EMAIL: "Check the email address.",
  INVALID_RECOVERY_TOKEN: "Ask for a new recovery code and use it within the hour.",
  JOB_NOT_FOUND: "It may have been deleted, or it belongs to another account.",
  NOT_FOUND: "Check the link, or go back to your jobs.",
  JOB_NOT_COMPLETED: "Wait for the job to finish.",
  JOB_FINISHED: "The job already finished.",
  JOB_RUNNING: "Cancel the job first, then delete it.",
  BUDGET_EXCEEDED: "Raise the budget or ask for fewer generated clips.",
  ENGINE_UNAVAILABLE: "Choose the automatic engine and try again.",
  WORKER_LOST: "Start the job again; nothing was charged for the lost attempt.",
  LINK_EXPIRED: "Reload the page to get a fresh link.",
  GONE: "Files are kept 14 days; run the job again to get it back.",
  ADMIN_REQUIRED: "Ask an operator to grant your account the role, then sign in again.",
  JOB_NOT_RETRYABLE: "Only failed or canceled jobs can be retried; refresh the list.",
  INPUTS_GONE: "Ask the user to start the job again with their files.",
  NETWORK: "Check your connection and try again.",
  INTERNAL_ERROR: "Try again in a moment.",
};

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `The server answered ${status}.`);
    this.status = status;
    this.code = body?.code || (status >= 500 ? "INTERNAL_ERROR" : "HTTP_ERROR");
    this.retryable = !!body?.retryable;
    this.details = body?.details;
  }
}

/** One readable paragraph: what went wrong, then what to do next. */
export function explain(err) {
  if (!err) return "";
  const code = err.code || "";
  let what = err.message || "Something went wrong.";
  if (code === "INTERNAL_ERROR") what = "Something went wrong on our side.";
  const next = NEXT_STEP[code];
  return next && !what.includes(next) ? `${what} ${next}` : what;
}
