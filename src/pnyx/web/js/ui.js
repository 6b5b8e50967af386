// Small DOM helpers: element builder, keyed list sync, announcements, error wording.

/**
 * h("button", {class: "x", onclick: fn, "aria-label": "…"}, "text", child, …)
 * Props: `class`, `dataset`, `on<event>`, `style` (an object of CSS properties, set
 * through the CSSOM: the page's Content-Security-Policy refuses style attributes),
 * booleans (true sets the attribute, false/null leaves it out), anything else as an
 * attribute. Children: strings, nodes, arrays, null.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value == null || value === false) continue;
    if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "style") {
      for (const [property, v] of Object.entries(value)) el.style.setProperty(property, String(v));
    }
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "value") el.value = value;
    else if (key === "checked") el.checked = Boolean(value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child == null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Replace the element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

/** Show or hide (hidden attribute), only touching the DOM on a change. */
export function show(el, visible) {
  if (el.hidden === visible) el.hidden = !visible;
}

/**
 * Make `parent`'s children match `items` by key, creating missing ones with
 * `create(item)`, updating all with `update(el, item)`, removing the rest, and keeping
 * elements (and the focus inside them) that stay.
 */
export function syncList(parent, items, key, create, update) {
  const existing = new Map();
  for (const el of parent.children) existing.set(el.dataset.key, el);
  let previous = null;
  for (const item of items) {
    const k = String(key(item));
    let el = existing.get(k);
    if (el) existing.delete(k);
    else {
      el = create(item);
      el.dataset.key = k;
    }
    update(el, item);
    const want = previous ? previous.nextElementSibling : parent.firstElementChild;
    if (want !== el) parent.insertBefore(el, want);
    previous = el;
  }
  for (const el of existing.values()) el.remove();
}

let toastSeq = 0;

/** A short message in the polite live region (also read by screen readers). */
export function toast(message, { tone = "info", ms = 5000 } = {}) {
  const box = document.getElementById("toasts");
  if (!box) return;
  const el = h("p", { class: `toast toast-${tone}`, id: `toast-${++toastSeq}` }, message);
  box.append(el);
  while (box.children.length > 4) box.firstElementChild.remove();
  setTimeout(() => el.remove(), ms);
}

/** Something the user must hear now (assertive live region) and see as a toast. */
export function alertNow(message) {
  const box = document.getElementById("alerts");
  if (box) {
    box.textContent = "";
    requestAnimationFrame(() => { box.textContent = message; });
  }
  toast(message, { tone: "error", ms: 8000 });
}

const FRIENDLY = {
  space_over: "This space has ended.",
  not_live: "This space is not live right now.",
  stage_full: "The stage is full: every speaker seat is taken.",
  cohosts_full: "All co-host seats are taken.",
  removed: "You were removed from this space.",
  blocked: "The host has blocked you from their spaces.",
  invite_only: "This space is invite only: wait for the host to invite you.",
  not_followed: "The host only takes requests from people they follow.",
  reaction_rate: "Easy there: too many reactions at once.",
  token_expired: "Your session has expired: please sign in again.",
  bad_credentials: "That handle and password don't match.",
  handle_taken: "That handle is taken: try another.",
};

/** What to tell a person about an ApiError. */
export function describeError(err) {
  if (!err) return "Something went wrong.";
  if (err.isNetwork) return "Can't reach the server: check your connection. Retrying…";
  if (err.isRetryLater && err.code !== "reaction_rate" && !err.code.endsWith("_limited")) {
    const wait = err.retryAfterS != null ? `: try again in about ${Math.ceil(err.retryAfterS)} s` : "";
    return `The server is busy right now${wait}. Anything you are listening to keeps playing.`;
  }
  return FRIENDLY[err.code] || err.message || "Something went wrong.";
}

export function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

/** A date and time to read; with its year when that is not this year (`now`: for tests). */
export function formatWhen(iso, now = new Date()) {
  if (!iso) return "";
  const d = new Date(iso);
  const options = { weekday: "short", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" };
  if (d.getFullYear() !== now.getFullYear()) options.year = "numeric";
  return d.toLocaleString(undefined, options);
}

export const EMOJI = [
  ["👏", "clap"],
  ["❤️", "heart"],
  ["😂", "laugh"],
  ["🔥", "fire"],
  ["💯", "hundred"],
  ["🙌", "raised hands"],
  ["😮", "wow"],
  ["👍", "thumbs up"],
];

export const ROLE_LABEL = { host: "Host", cohost: "Co-host", speaker: "Speaker", listener: "Listener" };

/** Two letters for an avatar. */
export function initials(handle) {
  return (handle || "?").replace(/[^a-z0-9]/gi, "").slice(0, 2).toUpperCase() || "?";
}

/** A stable hue per handle for avatars. */
export function hue(handle) {
  let n = 0;
  for (const ch of handle || "") n = (n * 31 + ch.charCodeAt(0)) % 360;
  return n;
}
