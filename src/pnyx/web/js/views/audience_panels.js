// What a host sees of the audience: who is listening now (host and co-hosts, while the
// space is live: remove, block, invite to speak) and, for the host, the space's figures
// with a chart of listeners over time (live, at the end, and on the replay page).

import { get, post, put } from "../api.js";
import { timelineChart } from "../chart.js";
import { describeError, h, plural, setText, show, syncList, toast } from "../ui.js";

const REFRESH_MS = 5000;
const PAGE = 50;

const listenersPath = (id, before) =>
  `/v1/spaces/${encodeURIComponent(id)}/listeners?limit=${PAGE}${before != null ? `&before=${before}` : ""}`;
const analyticsPath = (id) => `/v1/spaces/${encodeURIComponent(id)}/analytics`;
const memberPath = (id, handle, what) =>
  `/v1/spaces/${encodeURIComponent(id)}/members/${encodeURIComponent(handle)}/${what}`;

export class ListenersPanel {
  constructor(spaceId, token) {
    this.spaceId = spaceId;
    this.token = token;
    this.timer = null;
    this.active = false;
    this.items = [];
    this.next = null;
    this.list = h("ul", { class: "listener-list", id: "listener-list" });
    this.note = h("p", { class: "hint", id: "listeners-note" });
    this.more = h("button", { class: "button button-quiet", type: "button", id: "listeners-more", hidden: true }, "Show more");
    this.el = h("section", { class: "panel listeners-panel", id: "listeners-panel", "aria-labelledby": "listeners-heading", hidden: true },
      h("h2", { id: "listeners-heading" }, "Listening now"), this.note, this.list, this.more);
    this.list.addEventListener("click", (e) => this.onClick(e));
    this.more.addEventListener("click", () => this.refresh({ more: true }));
  }

  setActive(active) {
    if (active === this.active) return;
    this.active = active;
    show(this.el, active);
    clearInterval(this.timer);
    this.timer = null;
    if (active) {
      this.refresh();
      this.timer = setInterval(() => this.refresh(), REFRESH_MS);
    }
  }

  async refresh({ more = false } = {}) {
    try {
      const res = await get(listenersPath(this.spaceId, more ? this.next : null), { token: this.token() });
      const page = res.data.listeners;
      this.items = more ? [...this.items, ...page.filter((p) => !this.items.some((i) => i.handle === p.handle))] : page;
      this.next = res.data.next_before;
      this.render();
    } catch (err) {
      setText(this.note, describeError(err));
    }
  }

  render() {
    setText(this.note, this.items.length
      ? `${plural(this.items.length, "signed-in listener")}, newest first. Anonymous listeners are only counted.`
      : "No signed-in listeners right now.");
    syncList(this.list, this.items, (i) => i.handle, (i) => h("li", { class: "listener", dataset: { handle: i.handle } },
      h("span", { class: "member-name" }, `@${i.handle}`),
      h("span", { class: "listener-actions" },
        h("button", { class: "button button-quiet", type: "button", dataset: { action: "invite", handle: i.handle }, "aria-label": `@${i.handle}: invite to speak` }, "Invite to speak"),
        h("button", { class: "button button-quiet", type: "button", dataset: { action: "remove", handle: i.handle }, "aria-label": `@${i.handle}: remove` }, "Remove"),
        h("button", { class: "button button-quiet button-danger-quiet", type: "button", dataset: { action: "block", handle: i.handle }, "aria-label": `@${i.handle}: remove and block` }, "Block"))), () => {});
    show(this.more, this.next != null);
  }

  async onClick(event) {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const { action, handle } = button.dataset;
    button.disabled = true;
    try {
      if (action === "invite") {
        await put(memberPath(this.spaceId, handle, "role"), { token: this.token(), json: { role: "speaker" } });
        toast(`@${handle} is invited to speak.`);
      } else {
        await post(memberPath(this.spaceId, handle, "remove"), { token: this.token(), json: { block: action === "block" } });
        toast(action === "block" ? `@${handle} was removed and blocked.` : `@${handle} was removed.`);
        this.items = this.items.filter((i) => i.handle !== handle);
        this.render();
      }
    } catch (err) {
      toast(describeError(err), { tone: "error" });
    } finally {
      button.disabled = false;
    }
  }

  close() {
    this.setActive(false);
  }
}

function duration(seconds) {
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  return m < 60 ? `${m} min` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

function when(iso) {
  return iso ? new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "";
}

export class AnalyticsPanel {
  constructor(spaceId, token) {
    this.spaceId = spaceId;
    this.token = token;
    this.body = h("div", { class: "analytics-body", id: "analytics-body" }, h("p", { class: "hint" }, "Loading…"));
    this.el = h("section", { class: "panel analytics-panel", id: "analytics-panel", "aria-labelledby": "analytics-heading", hidden: true },
      h("h2", { id: "analytics-heading" }, "How it went"), this.body);
  }

  async load() {
    show(this.el, true);
    try {
      const res = await get(analyticsPath(this.spaceId), { token: this.token() });
      this.render(res.data);
      return res.data;
    } catch (err) {
      this.body.replaceChildren(h("p", { class: "hint" }, describeError(err)));
      return null;
    }
  }

  render(a) {
    const stat = (label, value, id) => h("div", { class: "stat", id },
      h("dt", {}, label), h("dd", {}, value));
    const reactions = Object.entries(a.reactions);
    const joins = a.joins_per_minute.reduce((n, m) => n + m.joins, 0);
    this.body.replaceChildren(
      h("dl", { class: "stats" },
        stat("Peak listeners", `${a.peak_listeners}${a.peak_at ? ` at ${when(a.peak_at)}` : ""}`, "stat-peak"),
        stat("Unique listeners", String(a.unique_listeners), "stat-unique"),
        stat("Listening time", duration(a.listening_s), "stat-listening"),
        stat("Joins", String(joins), "stat-joins"),
        stat("Replay", `${plural(a.replay.plays, "play")}, ${plural(a.replay.downloads, "download")}`, "stat-replay")),
      timelineChart(a.timeline),
      h("h3", {}, "Reactions"),
      reactions.length
        ? h("p", { class: "reaction-totals", id: "reaction-totals" }, reactions.map(([e, n]) => `${e} ${n}`).join("  "))
        : h("p", { class: "hint" }, "No reactions."),
      h("h3", {}, "Who spoke"),
      a.speakers.length
        ? h("ul", { class: "speaker-times", id: "speaker-times" }, a.speakers.map((s) => h("li", {}, `@${s.handle}: ${duration(s.speaking_s)}`)))
        : h("p", { class: "hint" }, "Nobody spoke."),
    );
  }
}
