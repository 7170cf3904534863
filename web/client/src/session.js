// Who is signed in. Locally the API is its own auth (/api/v1/auth/*); in production the page
// talks to Supabase Auth through supabase-js (loaded only then, so local pages stay small).
//
// Tokens never go into a URL. The session is kept in localStorage so it survives a reload and
// new tabs: that is where supabase-js keeps it too, and with a CSP that allows only our own
// scripts, an injected script -- the usual way such storage is read -- cannot run. The access
// token is short-lived (1 h) and refreshed from the refresh token when it is about to expire.
import { isAdminToken } from "./claims.js";
import { ApiError } from "./errors.js";
import { createStore } from "./store.js";

const KEY = "soundstage.session";
export const session = createStore({ ready: false, user: null, config: null, recovery: false });

let supabase = null;

async function post(path, body) {
  let r;
  try {
    r = await fetch(`/api/v1/auth/${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, { code: "NETWORK", message: "The server could not be reached." });
  }
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

function saveLocal(tokens, email) {
  const s = {
    access_token: tokens.access_token,
    refresh_token: tokens.refresh_token,
    expires_at: Date.now() + (tokens.expires_in || 3600) * 1000,
    email,
  };
  localStorage.setItem(KEY, JSON.stringify(s));
  session.set({ user: userOf(email, s.access_token) });
  return s;
}

// The role is shown in the page (the Operator link) only; the API enforces it.
const userOf = (email, token) => ({ email, admin: isAdminToken(token) });

const loadLocal = () => {
  try {
    return JSON.parse(localStorage.getItem(KEY) || "null");
  } catch {
    return null;
  }
};

// Supabase Auth errors carry their own codes; map the ones a person can act on to ours.
const SUPABASE_CODES = {
  invalid_credentials: "INVALID_CREDENTIALS",
  user_already_exists: "EMAIL_TAKEN",
  email_exists: "EMAIL_TAKEN",
  weak_password: "WEAK_PASSWORD",
  email_address_invalid: "INVALID_EMAIL",
  over_request_rate_limit: "RATE_LIMITED",
};
function supabaseError(error) {
  return new ApiError(error.status || 400, {
    code: SUPABASE_CODES[error.code] || "AUTH_ERROR",
    message: error.message,
  });
}

export async function initSession() {
  let config;
  try {
    config = await (await fetch("/api/v1/config")).json();
  } catch {
    config = { auth: "local", limits: {}, max_files: 4 };
  }
  if (config.auth === "supabase") {
    const { createClient } = await import("@supabase/supabase-js");
    // PKCE: the recovery/confirmation link carries a one-time code, not a token.
    supabase = createClient(config.supabase_url, config.supabase_anon_key, {
      auth: { persistSession: true, autoRefreshToken: true, flowType: "pkce" },
    });
    const { data } = await supabase.auth.getSession();
    supabase.auth.onAuthStateChange((event, s) => {
      session.set({
        user: s ? userOf(s.user.email, s.access_token) : null,
        recovery: event === "PASSWORD_RECOVERY" || session.get().recovery,
      });
    });
    const s = data.session;
    session.set({ config, ready: true, user: s ? userOf(s.user.email, s.access_token) : null });
    return;
  }
  const s = loadLocal();
  session.set({ config, ready: true, user: s ? userOf(s.email, s.access_token) : null });
}

let refreshing = null;
export async function accessToken({ force = false } = {}) {
  if (supabase) {
    if (force) await supabase.auth.refreshSession();
    const { data } = await supabase.auth.getSession();
    return data.session?.access_token || null;
  }
  const s = loadLocal();
  if (!s) return null;
  if (!force && s.expires_at - Date.now() > 60_000) return s.access_token;
  // One refresh at a time, even when many requests notice the expiry together.
  refreshing ||= post("refresh", { refresh_token: s.refresh_token })
    .then((t) => saveLocal(t, s.email).access_token)
    .catch(() => {
      signOutLocal();
      return null;
    })
    .finally(() => (refreshing = null));
  return refreshing;
}

export async function signUp(email, password) {
  if (supabase) {
    const { data, error } = await supabase.auth.signUp({ email, password });
    if (error) throw supabaseError(error);
    if (!data.session) return { confirm: true };
    return {};
  }
  saveLocal(await post("register", { email, password }), email);
  return {};
}

export async function signIn(email, password) {
  if (supabase) {
    const { error } = await supabase.auth.signInWithPassword({ email, password });
    if (error) throw supabaseError(error);
    return;
  }
  saveLocal(await post("login", { email, password }), email);
}

function signOutLocal() {
  localStorage.removeItem(KEY);
  session.set({ user: null });
}

export async function signOut() {
  if (supabase) await supabase.auth.signOut();
  signOutLocal();
}

/** Step 1 of a reset: send the recovery email (or, locally, the server logs a code). */
export async function requestReset(email) {
  if (supabase) {
    const { error } = await supabase.auth.resetPasswordForEmail(email, {
      redirectTo: `${location.origin}/reset`,
    });
    if (error) throw supabaseError(error);
    return;
  }
  await post("reset-password", { email });
}

/** Step 2: set the new password (locally with the recovery code; on Supabase the link's
 * one-time code has already signed the user in for recovery). */
export async function finishReset(code, password) {
  if (supabase) {
    const { error } = await supabase.auth.updateUser({ password });
    if (error) throw supabaseError(error);
    session.set({ recovery: false });
    return;
  }
  const tokens = await post("reset-password", { token: code, password });
  const me = await fetch("/api/v1/auth/me", {
    headers: { Authorization: `Bearer ${tokens.access_token}` },
  }).then((r) => r.json());
  saveLocal(tokens, me.email);
}

export const usesSupabase = () => !!supabase;
