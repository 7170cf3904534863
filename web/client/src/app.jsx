// The shell: header with navigation, and the page for the current path.
import { useEffect, useLayoutEffect, useRef } from "preact/hooks";
import { Link, match, navigate, usePath } from "./router.jsx";
import { session, signOut } from "./session.js";
import { useStore } from "./store.js";
import { AuthPage } from "./pages/AuthPage.jsx";
import { Dashboard } from "./pages/Dashboard.jsx";
import { NewJob } from "./pages/NewJob.jsx";
import { JobPage } from "./pages/JobPage.jsx";
import { AdminPage } from "./pages/AdminPage.jsx";

const PUBLIC = ["/login", "/signup", "/reset"];

// Returns an element, not a new component: the page keeps its state when the shell re-renders.
function route(path) {
  let m;
  if (match("/login", path)) return <AuthPage key="login" mode="login" />;
  if (match("/signup", path)) return <AuthPage key="signup" mode="signup" />;
  if (match("/reset", path)) return <AuthPage key="reset" mode="reset" />;
  if (match("/", path)) return <Dashboard />;
  if (match("/new", path)) return <NewJob />;
  if ((m = match("/new/:kind", path))) return <NewJob key={m.kind} kind={m.kind} />;
  if ((m = match("/jobs/:id", path))) return <JobPage key={m.id} id={m.id} />;
  if (match("/admin", path)) return <AdminPage />;
  return (
    <section>
      <h1 tabIndex={-1}>Page not found</h1>
      <p>
        There is nothing at this address. <Link href="/">Go to your jobs</Link>.
      </p>
    </section>
  );
}

export function App() {
  const path = usePath();
  const { user, recovery } = useStore(session);
  const main = useRef(null);
  const isPublic = PUBLIC.includes(path);

  useEffect(() => {
    if (recovery && path !== "/reset") navigate("/reset", { replace: true });
    else if (!user && !isPublic) navigate(`/login?next=${encodeURIComponent(path)}`, { replace: true });
  }, [user, path, recovery]);

  // After navigation, move focus to the page's heading so keyboard and screen-reader users start
  // there. A layout effect runs in the same task as the render, so no key pressed after the page
  // appears can land before the move. A page whose heading comes later (a job still loading) gets
  // focus when the heading appears, unless the user has moved focus in the meantime.
  useLayoutEffect(() => {
    const root = main.current;
    if (!root) return;
    const before = document.activeElement;
    const take = () => {
      const h1 = root.querySelector("h1");
      h1?.focus({ preventScroll: true });
      return !!h1;
    };
    if (take()) return;
    const untouched = () => {
      const now = document.activeElement;
      return !now || now === document.body || now === before || !now.isConnected;
    };
    const watch = new MutationObserver(() => {
      if (!untouched() || take()) watch.disconnect();
    });
    watch.observe(root, { childList: true, subtree: true });
    return () => watch.disconnect();
  }, [path]);

  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <Link href="/" class="brand">
          Soundstage
        </Link>
        {user && (
          <nav aria-label="Main">
            <Link href="/">Jobs</Link>
            <Link href="/new">New job</Link>
            {user.admin && <Link href="/admin">Operator</Link>}
            <span class="who" title={user.email}>
              {user.email}
            </span>
            <button type="button" class="link" onClick={() => signOut().then(() => navigate("/login"))}>
              Log out
            </button>
          </nav>
        )}
      </header>
      <main id="main" ref={main}>
        {user || isPublic ? route(path) : null}
      </main>
      <footer class="foot">
        <a href="/docs">API docs</a> · <a href="/health">Service health</a>
      </footer>
    </>
  );
}
