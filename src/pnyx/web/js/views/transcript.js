// A captioned space's transcript under its replay: one line per cue (time, speaker,
// words), the line being played highlighted as the replay moves, a click on a line
// plays from there; the transcript to download as WebVTT or text. Hidden when the space
// was not captioned (404). While the space is being finished the transcript may still
// grow (complete: false): it is read again a few times.

import { get, paths } from "../api.js";
import { h, setText, show } from "../ui.js";

const RETRY_MS = 3000;
const RETRIES = 20;
const MAX_PROFILES = 16; // speakers whose display names are looked up

/** Seconds as m:ss (h:mm:ss from an hour). */
export function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const pad = (n) => String(n).padStart(2, "0");
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  return hours ? `${hours}:${pad(minutes)}:${pad(s % 60)}` : `${minutes}:${pad(s % 60)}`;
}

export class TranscriptPanel {
  /**
   * @param {object} space the space (GET /v1/spaces/{id}); its links, signed or plain
   * @param {{seek: ((seconds: number) => void) | null}} hooks
   * seek: play the replay from there (null: no replay, the lines are only read)
   */
  constructor(space, hooks) {
    this.space = space;
    this.hooks = hooks;
    this.url = space.links?.transcript || paths.transcript(space.id);
    this.cues = [];
    this.current = -1;
    this.names = new Map();
    this.stopped = false;
    this.timer = 0;
    this.status = h("p", { class: "hint", id: "transcript-status", role: "status" });
    this.list = h("ol", { class: "transcript", id: "transcript-lines", "aria-label": "Transcript lines" });
    this.downloads = h("p", { class: "transcript-downloads" }, "Download the transcript: ",
      h("a", { href: `${this.url}.vtt`, download: `${space.title}.vtt`, id: "transcript-vtt" }, "WebVTT (.vtt)"), " · ",
      h("a", { href: `${this.url}.txt`, download: `${space.title}.txt`, id: "transcript-txt" }, "text (.txt)"));
    this.el = h("section", { class: "card transcript-panel", id: "transcript-panel", "aria-labelledby": "transcript-heading", hidden: true },
      h("h2", { id: "transcript-heading" }, "Transcript"),
      this.hooks.seek ? h("p", { class: "hint" }, "Select a line to play the replay from there.") : null,
      this.status, this.list, this.downloads);
    this.list.addEventListener("click", (event) => {
      const b = event.target.closest("button[data-start]");
      if (b && this.hooks.seek) this.hooks.seek(Number(b.dataset.start));
    });
  }

  async load(attempt = 0) {
    if (this.stopped) return;
    let data;
    try {
      data = (await get(this.url)).data;
    } catch (err) {
      if (err.status === 404) {
        show(this.el, false); // not captioned: no transcript
        return;
      }
      if (attempt < RETRIES) this.timer = setTimeout(() => this.load(attempt + 1), RETRY_MS);
      return;
    }
    if (this.stopped) return;
    this.cues = (data.cues || []).slice().sort((a, b) => a.start - b.start);
    this.renderLines();
    show(this.el, true);
    setText(this.status, this.cues.length === 0
      ? (data.complete ? "Nothing was said, so the transcript is empty." : "The transcript is being finished…")
      : data.complete ? "" : "The transcript is being finished: more lines may follow.");
    show(this.downloads, this.cues.length > 0);
    this.lookUpNames();
    if (!data.complete && attempt < RETRIES) this.timer = setTimeout(() => this.load(attempt + 1), RETRY_MS);
  }

  renderLines() {
    const seekable = Boolean(this.hooks.seek);
    this.list.replaceChildren(...this.cues.map((cue, i) => {
      const parts = [
        h("span", { class: "transcript-time" }, h("time", { datetime: `PT${Math.floor(cue.start)}S` }, clock(cue.start))),
        cue.speaker ? h("span", { class: "transcript-speaker", dataset: { handle: cue.speaker } }, this.name(cue.speaker)) : null,
        h("span", { class: "transcript-text" }, cue.text),
      ];
      const line = seekable
        ? h("button", { class: "transcript-line", type: "button", dataset: { start: String(cue.start) } }, parts)
        : h("div", { class: "transcript-line" }, parts);
      return h("li", { dataset: { index: String(i) } }, line);
    }));
    this.current = -1;
  }

  name(handle) {
    return this.names.get(handle) || `@${handle}`;
  }

  /** The speakers' display names, from their profiles (a removed account stays @handle). */
  async lookUpNames() {
    const handles = [...new Set(this.cues.map((c) => c.speaker).filter(Boolean))]
      .filter((handle) => !this.names.has(handle)).slice(0, MAX_PROFILES);
    await Promise.all(handles.map(async (handle) => {
      try {
        const profile = (await get(paths.profile(handle))).data;
        const named = profile.display_name && profile.display_name !== handle;
        this.names.set(handle, named ? profile.display_name : `@${handle}`);
      } catch {
        this.names.set(handle, `@${handle}`);
      }
    }));
    if (this.stopped) return;
    for (const el of this.list.querySelectorAll(".transcript-speaker")) setText(el, this.name(el.dataset.handle));
  }

  /** Highlight the line the replay is at (`seconds` on the replay's timeline). */
  follow(seconds) {
    let lo = 0;
    let hi = this.cues.length - 1;
    let at = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.cues[mid].start <= seconds) {
        at = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    if (at === this.current) return;
    const rows = this.list.children;
    if (this.current >= 0 && rows[this.current]) {
      rows[this.current].classList.remove("is-current");
      rows[this.current].firstElementChild.removeAttribute("aria-current");
    }
    this.current = at;
    const row = rows[at];
    if (!row) return;
    row.classList.add("is-current");
    row.firstElementChild.setAttribute("aria-current", "true");
    // Keep it in view inside the list (never scroll the page itself).
    const top = row.offsetTop; // the list is positioned: offsets are within it
    if (top < this.list.scrollTop || top + row.offsetHeight > this.list.scrollTop + this.list.clientHeight) {
      this.list.scrollTop = Math.max(0, top - this.list.clientHeight / 3);
    }
  }

  close() {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
