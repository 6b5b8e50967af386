// The bell: the signed-in account's notifications, an unread count, a list, a toast when a
// followed host goes live, and the browser-push opt-in.
//
// How news arrives: a plain poll of GET /v1/notifications, every `poll_s` seconds as the
// server says (a setting it can raise under load), only while the tab is visible (a hidden
// tab asks once when it is shown again), with exponential backoff on failures (and the
// server's Retry-After). A poll is one bounded read per signed-in visible tab; listeners
// who are not signed in cost nothing. A long-poll would hold a connection per signed-in
// tab on the origin, which an edge cannot collapse (every answer is per account), so the
// poll is the cheaper promise at scale; push (opt-in) covers closed tabs.

import { ApiError, call, del, get, paths, post } from "./api.js";
import { retryAfterMs } from "./retry.js";
import { currentSession } from "./session.js";
import { formatWhen, h, setText, show } from "./ui.js";

const MAX_BACKOFF_MS = 5 * 60 * 1000;
const PAGE = 30;

const TEXT = {
  space_live: (n) => `@${n.host} is live: ${n.title}`,
  space_soon: (n) => `Starting soon: ${n.title} (@${n.host})`,
  space_rescheduled: (n) => `Moved to ${formatWhen(n.detail)}: ${n.title} (@${n.host})`,
  space_cancelled: (n) => `Cancelled: ${n.title} (@${n.host})${n.detail ? `: ${n.detail}` : ""}`,
  speak_invite: (n) => `@${n.host} invites you to speak in ${n.title}`,
  space_invite: (n) => `@${n.host} invited you to listen to ${n.title}`,
};

export function describe(n) {
  return (TEXT[n.kind] || ((x) => `${x.title} (@${x.host})`))(n);
}

class Bell {
  constructor() {
    this.items = [];
    this.unread = 0;
    this.newest = null; // the newest `at` seen: later space_live items are toasted
    this.timer = 0;
    this.failures = 0;
    this.pollMs = 30000;
    this.session = null;
    this.controller = null;
    this.onVisible = () => {
      if (!document.hidden && this.session) this.poll();
    };
    document.addEventListener("visibilitychange", this.onVisible);
  }

  /** The bell button and its panel, for the account menu. */
  render() {
    this.count = h("span", { class: "bell-count", id: "bell-count", hidden: true });
    this.button = h("button", {
      class: "button button-quiet bell", type: "button", id: "bell",
      "aria-expanded": "false", "aria-controls": "bell-panel",
      onclick: () => this.toggle(),
    }, h("span", { "aria-hidden": "true" }, "🔔"), h("span", { class: "visually-hidden" }, "Notifications"), this.count);
    this.list = h("ul", { class: "bell-list", id: "bell-list" });
    this.pushButton = h("button", { class: "button button-quiet", type: "button", id: "push-opt-in", onclick: () => this.togglePush() }, "Browser notifications: off");
    this.panel = h("section", { class: "bell-panel panel", id: "bell-panel", "aria-label": "Notifications", hidden: true },
      h("h2", {}, "Notifications"), this.list, this.pushButton);
    this.wrap = h("div", { class: "bell-wrap" }, this.button, this.panel);
    this.paint();
    this.paintPush();
    return this.wrap;
  }

  start(session) {
    if (this.session?.token === session?.token) return;
    this.stop();
    this.session = session;
    this.items = [];
    this.unread = 0;
    this.newest = null;
    if (session) this.poll();
  }

  stop() {
    clearTimeout(this.timer);
    this.controller?.abort();
    this.session = null;
  }

  async poll() {
    clearTimeout(this.timer);
    const session = this.session;
    if (!session) return;
    this.controller?.abort();
    this.controller = new AbortController();
    let delay;
    try {
      const res = await get(`/v1/notifications?limit=${PAGE}`, { token: session.token, signal: this.controller.signal });
      if (session !== this.session) return;
      this.failures = 0;
      this.pollMs = Math.max(1000, res.data.poll_s * 1000);
      this.take(res.data);
      delay = this.pollMs;
    } catch (err) {
      if (err.name === "AbortError") return;
      if (err instanceof ApiError && err.isAuth) return; // signed out elsewhere: stop
      this.failures += 1;
      delay = err.retryAfterS != null
        ? retryAfterMs(err.retryAfterS)
        : Math.min(MAX_BACKOFF_MS, this.pollMs * 2 ** this.failures);
    }
    if (this.session === session && !document.hidden) this.timer = setTimeout(() => this.poll(), delay);
  }

  take(data) {
    const first = this.newest === null;
    const fresh = first ? [] : data.notifications.filter((n) => n.at > this.newest);
    this.items = data.notifications;
    this.unread = data.unread;
    if (this.items.length) this.newest = this.items.reduce((a, n) => (n.at > a ? n.at : a), this.newest || "");
    else if (first) this.newest = "";
    for (const n of fresh.reverse()) {
      if (n.kind === "space_live" || n.kind === "speak_invite") this.toastOf(n);
    }
    this.paint();
  }

  toastOf(n) {
    const box = document.getElementById("toasts");
    if (!box) return;
    const el = h("p", { class: "toast toast-info toast-live", dataset: { space: n.space } },
      h("a", { href: `/s/${n.space}`, "data-link": true }, describe(n)));
    box.append(el);
    while (box.children.length > 4) box.firstElementChild.remove();
    setTimeout(() => el.remove(), 10000);
  }

  paint() {
    if (!this.button) return;
    setText(this.count, this.unread > 99 ? "99+" : String(this.unread));
    show(this.count, this.unread > 0);
    this.button.setAttribute("aria-label", this.unread ? `Notifications, ${this.unread} unread` : "Notifications");
    this.list.replaceChildren(...(this.items.length
      ? this.items.map((n) => h("li", { class: `bell-item bell-${n.kind}`, dataset: { kind: n.kind, space: n.space } },
        h("a", { href: `/s/${n.space}`, "data-link": true, onclick: () => this.close() }, describe(n)),
        h("time", { datetime: n.at }, formatWhen(n.at))))
      : [h("li", { class: "empty" }, "Nothing yet. Follow hosts to hear when they go live.")]));
  }

  toggle() {
    if (this.panel.hidden) this.open();
    else this.close();
  }

  async open() {
    show(this.panel, true);
    this.button.setAttribute("aria-expanded", "true");
    if (this.unread && this.session) {
      const until = this.items[0]?.at;
      try {
        await post("/v1/notifications/read", { token: this.session.token, json: until ? { until } : {} });
        this.unread = 0;
        this.paint();
      } catch { /* the count stays; the next poll tells */ }
    }
  }

  close() {
    show(this.panel, false);
    this.button?.setAttribute("aria-expanded", "false");
  }

  // -- browser push (opt-in) -------------------------------------------------------
  get pushSupported() {
    return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
  }

  async subscription() {
    if (!this.pushSupported) return null;
    const reg = await navigator.serviceWorker.getRegistration("/web/");
    return reg ? reg.pushManager.getSubscription() : null;
  }

  async paintPush() {
    if (!this.pushButton) return;
    if (!this.pushSupported) {
      show(this.pushButton, false);
      return;
    }
    const sub = await this.subscription().catch(() => null);
    setText(this.pushButton, sub ? "Browser notifications: on" : "Browser notifications: off");
    this.pushButton.setAttribute("aria-pressed", sub ? "true" : "false");
  }

  async togglePush() {
    const session = this.session;
    if (!session || !this.pushSupported) return;
    try {
      const existing = await this.subscription();
      if (existing) {
        await del(`/v1/push/subscriptions?endpoint=${encodeURIComponent(existing.endpoint)}`, { token: session.token });
        await existing.unsubscribe();
      } else {
        if ((await Notification.requestPermission()) !== "granted") return;
        const key = (await get("/v1/push/key")).data.public_key;
        const reg = await activated(await navigator.serviceWorker.register("/web/sw.js", { scope: "/web/" }));
        const sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
        await call("/v1/push/subscriptions", { method: "POST", token: session.token, json: sub.toJSON() });
      }
    } catch (err) {
      console.warn("push opt-in failed", err);
    }
    this.paintPush();
  }
}

/** The registration once its worker is active. (Not navigator.serviceWorker.ready: the
 * worker's scope is /web/, which no page is under, so that promise would never settle.) */
function activated(reg) {
  if (reg.active) return Promise.resolve(reg);
  const worker = reg.installing || reg.waiting;
  return new Promise((resolve, reject) => {
    worker.addEventListener("statechange", () => {
      if (worker.state === "activated") resolve(reg);
      else if (worker.state === "redundant") reject(new Error("the service worker failed to install"));
    });
  });
}

export const bell = new Bell();

/** The live spaces of the hosts the signed-in account follows (home page row). */
export async function followingLive(signal) {
  const session = currentSession();
  if (!session) return [];
  const res = await get("/v1/following/live?limit=12", { token: session.token, signal });
  return res.data.spaces;
}

export { paths };
