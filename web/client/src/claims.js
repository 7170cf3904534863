// What the access token says about its user, read in the page for display only: the server
// checks the signature and enforces the role on every admin call.

/** The token's payload (the middle part of the JWT), or {} when it cannot be read. */
export function tokenClaims(token) {
  try {
    const part = String(token || "").split(".")[1] || "";
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes)) || {};
  } catch {
    return {};
  }
}

/** An operator: the Supabase-style claim app_metadata.role == "admin". */
export const isAdminToken = (token) => tokenClaims(token)?.app_metadata?.role === "admin";
