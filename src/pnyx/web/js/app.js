// The Pnyx web client: a small router over views, and the account menu.
//   /               live and scheduled spaces
//   /signin         sign in or sign up
//   /new            create a space
//   /s/{id}         a space (host, co-host, speaker or listener view); its share link
//   /replay/{id}    the recording of an ended space
//   /c/{id}         a clip of a space
//   /u/{handle}     a profile: name, bio, followers, follow, the account's spaces
//   /settings       your account: display name, bio, password, deleting it

import { bell } from "./notifications.js";
import { currentSession, onSessionChange, signOut } from "./session.js";
import { fill, h, toast } from "./ui.js";
import * as authView from "./views/auth.js";
import * as clipView from "./views/clip.js";
import * as createView from "./views/create.js";
import * as homeView from "./views/home.js";
import * as profileView from "./views/profile.js";
import * as replayView from "./views/replay.js";
import * as settingsView from "./views/settings.js";
import * as spaceView from "./views/space.js";

const ROUTES = [
  [/^\/$/, homeView],
  [/^\/signin$/, authView],
  [/^\/new$/, createView],
  [/^\/s\/([A-Za-z0-9_-]+)$/, spaceView],
  [/^\/replay\/([A-Za-z0-9_-]+)$/, replayView],
  [/^\/c\/([A-Za-z0-9_-]+)$/, clipView],
  [/^\/u\/([A-Za-z0-9_]+)$/, profileView],
  [/^\/settings$/, settingsView],
];

const main = document.getElementById("main");
let cleanup = null;

function match(pathname) {
  for (const [pattern, view] of ROUTES) {
    const m = pattern.exec(pathname);
    if (m) return { view, params: m.slice(1) };
  }
  return null;
}

export function navigate(path, { replace = false } = {}) {
  const url = new URL(path, location.href);
  if (replace) history.replaceState({}, "", url);
  else history.pushState({}, "", url);
  render({ focus: true });
  renderNav();
}

function render({ focus = false } = {}) {
  if (cleanup) {
    try {
      cleanup();
    } catch (err) {
      console.warn("view cleanup failed", err);
    }
    cleanup = null;
  }
  main.replaceChildren();
  const found = match(location.pathname);
  if (!found) {
    document.title = "Not found · Pnyx";
    main.append(
      h("h1", {}, "Page not found"),
      h("p", {}, h("a", { href: "/", "data-link": true }, "Back to the spaces")),
    );
    return;
  }
  const params = new URLSearchParams(location.search);
  cleanup = found.view.mount(main, { params: found.params, query: params, navigate }) || null;
  // After an in-page navigation, move focus to the new page's heading so keyboard and
  // screen-reader users start there (as they would on a full page load).
  const heading = main.querySelector("h1");
  const viewFocused = main.contains(document.activeElement) && document.activeElement !== main;
  if (focus && heading && !viewFocused) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: false });
  }
}

function renderNav() {
  const nav = document.getElementById("account-nav");
  const session = currentSession();
  bell.start(session);
  if (session) {
    fill(
      nav,
      h("a", { class: "button button-primary nav-start", href: "/new", "data-link": true }, "Start a space"),
      bell.wrap || bell.render(),
      h("a", { class: "whoami", href: `/u/${session.handle}`, "data-link": true, "aria-label": `Signed in as @${session.handle}`, title: "Your profile" }, `@${session.handle}`),
      h("a", { class: "button button-quiet", href: "/settings", "data-link": true, id: "nav-settings" }, "Settings"),
      h("button", { class: "button button-quiet", type: "button", onclick: async () => {
        await signOut();
        navigate("/");
      } }, "Sign out"),
      h("button", {
        class: "button button-quiet", type: "button",
        title: "End every session of this account, on every device",
        onclick: async () => {
          const failure = await signOut({ everywhere: true });
          navigate("/");
          if (failure) toast(`Signed out here, but not everywhere: ${failure.message}`);
        },
      }, "Sign out everywhere"),
    );
  } else {
    const next = location.pathname === "/signin" ? "/" : location.pathname;
    fill(
      nav,
      h("a", { class: "button button-primary", href: `/signin?next=${encodeURIComponent(next)}`, "data-link": true }, "Sign in"),
    );
  }
}

document.addEventListener("click", (event) => {
  if (event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const a = event.target.closest("a[href]");
  if (!a || a.target || a.hasAttribute("download")) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || !match(url.pathname)) return;
  event.preventDefault();
  if (url.pathname + url.search !== location.pathname + location.search) navigate(url.pathname + url.search);
});

window.addEventListener("popstate", () => {
  render({ focus: true });
  renderNav();
});
onSessionChange(() => renderNav());

renderNav();
render();
