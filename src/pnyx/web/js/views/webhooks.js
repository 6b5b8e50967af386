// The account's webhook endpoints, a section of the settings page (docs/webhooks.md):
// the list, adding one (URL and events), its signing secret shown once after creation,
// a test event, each endpoint's recent deliveries, deleting one.

import { del, get, paths, post } from "../api.js";
import { describeError, formatWhen, h, plural, setText, show, syncList, toast } from "../ui.js";

// The events an endpoint may take: the API's list (api/webhooks.py `Subscribable`;
// tests/e2e/test_web_webhooks.py checks these against /openapi.json).
export const EVENTS = [
  ["space.scheduled", "A space is scheduled"],
  ["space.started", "A space goes live"],
  ["space.ended", "A space ends or is cancelled"],
  ["recording.ready", "A recording is ready"],
  ["recording.deleted", "You delete a recording"],
  ["clip.created", "Someone clips one of your spaces"],
];
const STATE_TEXT = { pending: "Pending", delivered: "Delivered", failed: "Failed" };
const WATCH_MS = 1000; // after "Send test": refresh the deliveries this often...
const WATCH_TIMES = 20; // ...at most this many times, until the test is no longer pending
const DELIVERIES = 10;

export class WebhooksSection {
  constructor(token) {
    this.token = token;
    this.controller = new AbortController();
    this.timers = new Set();
    this.open = new Set(); // endpoint ids whose deliveries are shown

    this.list = h("ul", { class: "webhook-list", id: "webhook-list", "aria-labelledby": "webhooks-heading" });
    this.empty = h("p", { class: "hint", id: "webhooks-empty", hidden: true }, "No endpoints yet.");
    this.status = h("p", { class: "hint", id: "webhooks-status", role: "status" });

    this.url = h("input", { id: "webhook-url", type: "url", inputmode: "url", maxlength: 2048, required: true,
      placeholder: "https://example.com/pnyx-events", autocomplete: "off", "aria-describedby": "webhook-url-hint" });
    this.description = h("input", { id: "webhook-description", maxlength: 200, autocomplete: "off" });
    this.boxes = EVENTS.map(([value, label]) => h("input", { type: "checkbox", id: `webhook-event-${value.replace(".", "-")}`,
      name: "webhook-event", value, checked: true }));
    this.formError = h("p", { class: "form-error", id: "webhook-form-error", role: "alert", hidden: true });
    this.addButton = h("button", { class: "button button-primary", type: "submit", id: "webhook-add" }, "Add endpoint");
    this.form = h("form", { class: "form webhook-form", id: "webhook-form", "aria-labelledby": "webhook-form-heading", novalidate: true },
      h("h3", { id: "webhook-form-heading" }, "Add an endpoint"),
      h("div", { class: "field" }, h("label", { for: "webhook-url" }, "Endpoint URL"), this.url,
        h("p", { class: "hint", id: "webhook-url-hint" }, "Pnyx POSTs each event there as JSON, signed with the endpoint's secret.")),
      h("fieldset", { class: "field webhook-events" }, h("legend", {}, "Events"),
        EVENTS.map(([value, label], i) => h("div", { class: "choice" }, this.boxes[i],
          h("label", { for: this.boxes[i].id }, label, " ", h("code", {}, value))))),
      h("div", { class: "field" }, h("label", { for: "webhook-description" }, "Description (optional)"), this.description),
      this.formError,
      h("div", { class: "actions" }, this.addButton));
    this.form.addEventListener("submit", (event) => { event.preventDefault(); this.create(); });

    this.secretValue = h("input", { id: "webhook-secret-value", readonly: true, "aria-describedby": "webhook-secret-note", spellcheck: "false" });
    this.secretNote = h("p", { id: "webhook-secret-note" });
    this.secretPanel = h("div", { class: "notice webhook-secret", id: "webhook-secret", role: "region", "aria-labelledby": "webhook-secret-heading", hidden: true },
      h("h3", { id: "webhook-secret-heading" }, "Signing secret"),
      this.secretNote,
      h("div", { class: "share" },
        h("label", { for: "webhook-secret-value", class: "visually-hidden" }, "Signing secret"), this.secretValue,
        h("button", { class: "button", type: "button", id: "webhook-secret-copy", onclick: () => this.copySecret() }, "Copy")),
      h("div", { class: "actions" },
        h("button", { class: "button button-quiet", type: "button", id: "webhook-secret-done", onclick: () => this.hideSecret() }, "I have saved it")));

    this.el = h("section", { class: "card webhooks", id: "webhooks", "aria-labelledby": "webhooks-heading" },
      h("h2", { id: "webhooks-heading" }, "Webhooks"),
      h("p", { class: "hint" }, "Have Pnyx call your own server when your spaces are scheduled, go live or end, "
        + "when a recording is ready or someone makes a clip. Each request carries Standard Webhooks "
        + "signature headers: check them with the endpoint's secret."),
      this.status, this.empty, this.list, this.secretPanel, this.form);
    this.list.addEventListener("click", (event) => this.onClick(event));
  }

  /** Fetch the endpoints (and the deliveries of those shown). */
  async load() {
    try {
      const res = await get(paths.webhooks, { token: this.token, signal: this.controller.signal });
      this.endpoints = res.data.webhooks;
      setText(this.status, "");
      this.render();
    } catch (err) {
      if (err.name !== "AbortError") setText(this.status, describeError(err));
    }
  }

  render() {
    show(this.empty, this.endpoints.length === 0);
    syncList(this.list, this.endpoints, (w) => w.id, (w) => this.item(w), () => {});
  }

  item(w) {
    const urlId = `webhook-url-${w.id}`;
    const deliveries = h("div", { class: "webhook-deliveries", id: `webhook-deliveries-${w.id}`, hidden: true },
      h("h4", {}, "Recent deliveries"),
      h("p", { class: "hint webhook-deliveries-note", role: "status" }),
      h("ul", { class: "delivery-list" }));
    const actions = h("div", { class: "actions webhook-actions" },
      h("button", { class: "button", type: "button", dataset: { action: "test" }, "aria-describedby": urlId }, "Send test"),
      h("button", { class: "button button-quiet", type: "button", dataset: { action: "deliveries" },
        "aria-expanded": "false", "aria-controls": deliveries.id, "aria-describedby": urlId }, "Deliveries"),
      h("button", { class: "button button-danger", type: "button", dataset: { action: "delete" }, "aria-describedby": urlId }, "Delete"));
    const confirm = h("div", { class: "confirm webhook-confirm", hidden: true },
      h("p", {}, "Delete this endpoint? Its undelivered events are dropped."),
      h("button", { class: "button button-danger", type: "button", dataset: { action: "confirm-delete" }, "aria-describedby": urlId }, "Delete endpoint"),
      h("button", { class: "button button-quiet", type: "button", dataset: { action: "keep" } }, "Keep it"));
    return h("li", { class: "webhook", dataset: { id: w.id } },
      h("p", { class: "webhook-url", id: urlId }, w.url),
      w.description ? h("p", { class: "webhook-description" }, w.description) : null,
      h("p", { class: "hint webhook-meta" }, `${plural(w.events.length, "event")}: ${w.events.join(", ")} · added ${formatWhen(w.created_at)}`),
      actions, confirm, deliveries);
  }

  async create() {
    show(this.formError, false);
    const url = this.url.value.trim();
    const events = this.boxes.filter((b) => b.checked).map((b) => b.value);
    if (!/^https?:\/\/[^\s/]+/i.test(url)) return this.fail("Enter the endpoint's full URL, starting with https:// (or http://).", this.url);
    if (!events.length) return this.fail("Choose at least one event.", this.boxes[0]);
    this.addButton.disabled = true;
    try {
      const res = await post(paths.webhooks, { token: this.token, json: { url, events, description: this.description.value.trim() } });
      const made = res.data;
      this.showSecret(made);
      this.url.value = this.description.value = "";
      for (const b of this.boxes) b.checked = true;
      toast("Endpoint added.");
      await this.load();
    } catch (err) {
      this.fail(describeError(err), this.url);
    } finally {
      this.addButton.disabled = false;
    }
  }

  fail(message, focus) {
    this.formError.textContent = message;
    show(this.formError, true);
    focus?.focus();
  }

  // -- the secret, shown once: it lives only in this input until "I have saved it" ----
  showSecret(made) {
    this.secretValue.value = made.secret;
    setText(this.secretNote, `The secret for ${made.url}. It is shown this once: copy it now and keep it on your server.`);
    show(this.secretPanel, true);
    this.secretValue.focus();
    this.secretValue.select();
  }

  async copySecret() {
    try {
      await navigator.clipboard.writeText(this.secretValue.value);
      toast("Secret copied.");
    } catch {
      this.secretValue.focus();
      this.secretValue.select();
      toast("Press Ctrl+C (⌘C) to copy the selected secret.");
    }
  }

  hideSecret() {
    this.secretValue.value = "";
    setText(this.secretNote, "");
    show(this.secretPanel, false);
    this.url.focus();
  }

  // -- per endpoint ---------------------------------------------------------------------
  async onClick(event) {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const li = button.closest("li.webhook");
    const id = li.dataset.id;
    const confirm = li.querySelector(".webhook-confirm");
    switch (button.dataset.action) {
      case "test": return this.sendTest(id, li, button);
      case "deliveries": return this.toggleDeliveries(id, li, button);
      case "delete":
        show(confirm, true);
        confirm.querySelector("[data-action=keep]").focus();
        return;
      case "keep":
        show(confirm, false);
        li.querySelector("[data-action=delete]").focus();
        return;
      case "confirm-delete": return this.remove(id, button);
      default:
    }
  }

  async sendTest(id, li, button) {
    button.disabled = true;
    try {
      const res = await post(paths.webhookTest(id), { token: this.token });
      toast("Test event queued.");
      this.setOpen(li, true);
      this.watch(id, li, res.data.id);
    } catch (err) {
      toast(describeError(err), { tone: "error" });
    } finally {
      button.disabled = false;
    }
  }

  toggleDeliveries(id, li) {
    const open = !this.open.has(id);
    this.setOpen(li, open);
    if (open) this.refreshDeliveries(id, li);
  }

  setOpen(li, open) {
    const id = li.dataset.id;
    if (open) this.open.add(id);
    else this.open.delete(id);
    show(li.querySelector(".webhook-deliveries"), open);
    li.querySelector("[data-action=deliveries]").setAttribute("aria-expanded", String(open));
  }

  /** Refresh the deliveries until message `msgId` is delivered or failed (bounded). */
  watch(id, li, msgId) {
    let left = WATCH_TIMES;
    const step = async () => {
      const found = await this.refreshDeliveries(id, li);
      const mine = found?.find((d) => d.msg_id === msgId);
      if (--left > 0 && li.isConnected && (!mine || mine.state === "pending")) {
        const timer = setTimeout(() => { this.timers.delete(timer); step(); }, WATCH_MS);
        this.timers.add(timer);
      }
    };
    step();
  }

  async refreshDeliveries(id, li) {
    const note = li.querySelector(".webhook-deliveries-note");
    const list = li.querySelector(".delivery-list");
    try {
      const res = await get(paths.webhookDeliveries(id, DELIVERIES), { token: this.token, signal: this.controller.signal });
      const found = res.data.deliveries;
      setText(note, found.length === 0 ? "Nothing sent yet."
        : found.length === 1 ? "One delivery so far." : `The last ${found.length} deliveries, newest first.`);
      syncList(list, found, (d) => d.msg_id, () => h("li", { class: "delivery" },
        h("span", { class: "delivery-event" }), h("span", { class: "delivery-state" }),
        h("span", { class: "delivery-detail hint" }), h("time", { class: "delivery-when hint" })), (el, d) => {
        setText(el.children[0], d.event);
        setText(el.children[1], STATE_TEXT[d.state] || d.state);
        el.children[1].className = `delivery-state badge state-${d.state}`;
        setText(el.children[2], detail(d));
        setText(el.children[3], formatWhen(d.done_at || d.created_at));
        el.children[3].setAttribute("datetime", d.done_at || d.created_at);
      });
      return found;
    } catch (err) {
      if (err.name !== "AbortError") setText(note, describeError(err));
      return null;
    }
  }

  async remove(id, button) {
    button.disabled = true;
    try {
      await del(paths.webhook(id), { token: this.token });
      this.open.delete(id);
      toast("Endpoint deleted.");
      await this.load();
      this.url.focus();
    } catch (err) {
      toast(describeError(err), { tone: "error" });
      button.disabled = false;
    }
  }

  close() {
    this.controller.abort();
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }
}

function detail(d) {
  const tries = plural(d.attempts, "attempt");
  const got = d.last_status != null ? `HTTP ${d.last_status}` : d.last_error || "";
  const next = d.state === "pending" && d.next_attempt_at ? `next try ${formatWhen(d.next_attempt_at)}` : "";
  return [tries, got, next].filter(Boolean).join(" · ");
}
