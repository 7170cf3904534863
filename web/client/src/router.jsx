// A tiny history router: the path is the state; links call navigate() instead of reloading.
import { useEffect, useState } from "preact/hooks";

const listeners = new Set();

export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  listeners.forEach((fn) => fn(location.pathname));
  window.scrollTo(0, 0);
}

window.addEventListener("popstate", () => listeners.forEach((fn) => fn(location.pathname)));

export function usePath() {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    listeners.add(setPath);
    return () => listeners.delete(setPath);
  }, []);
  return path;
}

/** Match "/jobs/:id" against a path; returns the params or null. */
export function match(pattern, path) {
  const p = pattern.split("/");
  const s = path.replace(/\/+$/, "").split("/");
  if (p.length !== s.length && !(path === "/" && pattern === "/")) return null;
  const params = {};
  for (let i = 0; i < p.length; i++) {
    if (p[i].startsWith(":")) params[p[i].slice(1)] = decodeURIComponent(s[i] || "");
    else if (p[i] !== (s[i] ?? "")) return null;
  }
  return params;
}

/** An <a> that navigates inside the app (keeps ctrl/cmd-click and middle-click native). */
export function Link({ href, children, ...rest }) {
  const onClick = (e) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
    e.preventDefault();
    navigate(href);
  };
  return (
    <a href={href} onClick={onClick} {...rest}>
      {children}
    </a>
  );
}
