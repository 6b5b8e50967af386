// The signed-in account: {handle, token} kept in localStorage, shared by every tab.

import { ApiError, paths, post } from "./api.js";

const KEY = "pnyx.session";
const listeners = new Set();

export function currentSession() {
  try {
    const value = JSON.parse(localStorage.getItem(KEY) || "null");
    return value && value.handle && value.token ? value : null;
  } catch {
    return null;
  }
}

export function setSession(session) {
  if (session) localStorage.setItem(KEY, JSON.stringify(session));
  else localStorage.removeItem(KEY);
  for (const fn of listeners) fn(currentSession());
}

/**
 * Sign out: the server ends this session's token (`everywhere`: every token of the
 * account, on every device), then this browser forgets it. The local sign-out happens
 * whatever the server answers (a token already refused is as good as ended); resolves
 * to the ApiError when the server could not be told, or null.
 */
export async function signOut({ everywhere = false } = {}) {
  const session = currentSession();
  let failure = null;
  if (session) {
    try {
      await post(everywhere ? paths.signOutAll : paths.signOut, { token: session.token });
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) failure = err;
    }
  }
  setSession(null);
  return failure;
}

export function onSessionChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

window.addEventListener("storage", (event) => {
  if (event.key === KEY) for (const fn of listeners) fn(currentSession());
});
