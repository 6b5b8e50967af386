// The signed-in account: {handle, token} kept in localStorage, shared by every tab.

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

export function signOut() {
  setSession(null);
}

export function onSessionChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

window.addEventListener("storage", (event) => {
  if (event.key === KEY) for (const fn of listeners) fn(currentSession());
});
