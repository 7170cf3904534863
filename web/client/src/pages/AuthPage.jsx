// Sign up, log in, and the two steps of a password reset.
import { useState } from "preact/hooks";
import { ErrorNote } from "../components/ErrorNote.jsx";
import { Link, navigate } from "../router.jsx";
import {
  finishReset,
  requestReset,
  session,
  signIn,
  signUp,
  usesSupabase,
} from "../session.js";
import { useStore } from "../store.js";

function nextPath() {
  const next = new URLSearchParams(location.search).get("next") || "/";
  return next.startsWith("/") && !next.startsWith("//") ? next : "/";
}

export function AuthPage({ mode }) {
  const { recovery } = useStore(session);
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [code, setCode] = useState("");
  const [error, setError] = useState(null);
  const [note, setNote] = useState("");
  const [busy, setBusy] = useState(false);
  const [sent, setSent] = useState(false);

  const run = (fn) => async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await fn();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  if (mode === "reset") {
    const supa = usesSupabase();
    const askNew = recovery || (sent && !supa);
    return (
      <section class="auth">
        <h1 tabIndex={-1}>Reset your password</h1>
        {!askNew && (
          <form
            onSubmit={run(async () => {
              await requestReset(email);
              setSent(true);
              setNote(
                supa
                  ? "If an account exists for this email, a reset link is on its way. Open it on this device."
                  : "If an account exists for this email, a recovery code was issued (on a local install the server prints it in its log). Enter it below."
              );
            })}
          >
            <label for="reset-email">Email</label>
            <input id="reset-email" type="email" autocomplete="email" required value={email} onInput={(e) => setEmail(e.target.value)} />
            <button type="submit" disabled={busy}>Send recovery</button>
          </form>
        )}
        {note && <p class="note" role="status">{note}</p>}
        {askNew && (
          <form
            onSubmit={run(async () => {
              await finishReset(code.trim(), password);
              navigate("/");
            })}
          >
            {!supa && (
              <>
                <label for="reset-code">Recovery code</label>
                <input id="reset-code" required autocomplete="one-time-code" value={code} onInput={(e) => setCode(e.target.value)} />
              </>
            )}
            <label for="reset-password">New password</label>
            <input id="reset-password" type="password" autocomplete="new-password" required minLength={8} value={password} onInput={(e) => setPassword(e.target.value)} />
            <button type="submit" disabled={busy}>Set new password</button>
          </form>
        )}
        <ErrorNote error={error} />
        <p>
          <Link href="/login">Back to log in</Link>
        </p>
      </section>
    );
  }

  const signup = mode === "signup";
  return (
    <section class="auth">
      <h1 tabIndex={-1}>{signup ? "Create your account" : "Log in"}</h1>
      <form
        onSubmit={run(async () => {
          if (signup) {
            const r = await signUp(email, password);
            if (r.confirm) {
              setNote("Check your email to confirm the account, then log in.");
              return;
            }
          } else await signIn(email, password);
          navigate(nextPath(), { replace: true });
        })}
      >
        <label for="auth-email">Email</label>
        <input id="auth-email" type="email" autocomplete="email" required value={email} onInput={(e) => setEmail(e.target.value)} />
        <label for="auth-password">Password</label>
        <input
          id="auth-password"
          type="password"
          autocomplete={signup ? "new-password" : "current-password"}
          required
          minLength={signup ? 8 : undefined}
          aria-describedby={signup ? "pw-hint" : undefined}
          value={password}
          onInput={(e) => setPassword(e.target.value)}
        />
        {signup && <p id="pw-hint" class="hint">At least 8 characters.</p>}
        <button type="submit" disabled={busy}>{signup ? "Sign up" : "Log in"}</button>
      </form>
      {note && <p class="note" role="status">{note}</p>}
      <ErrorNote error={error} />
      <p>
        {signup ? (
          <>Already have an account? <Link href="/login">Log in</Link></>
        ) : (
          <>New here? <Link href="/signup">Create an account</Link> · <Link href="/reset">Forgot your password?</Link></>
        )}
      </p>
    </section>
  );
}
