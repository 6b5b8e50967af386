// Live captions under a space's player: the cues of the space's WebVTT rendition (hls.js
// hands them over as it parses them, Safari's own HLS as a text track; player.js), shown
// as the audio reaches them, the speaker's name apart from the words.
//
// Recognition takes a few seconds, so a cue often arrives after the audio it captions has
// played. A cue shows once the playhead has reached its start and stays until HOLD_S past
// its end, or past the moment it arrived if that is later: a late cue is still read.
// At most MAX_LINES cues show. Screen readers get each cue once, when it first shows,
// through a log of their own (role=log, polite): the box's lines come and go with the
// playhead and would be read again and again.

import { h, setText, show, syncList } from "./ui.js";

const KEY = "pnyx.captions";
export const HOLD_S = 3; // a cue stays this long past its end (or its late arrival)
export const MAX_LINES = 3;
const FORGET_S = 60; // cues this far behind the playhead are dropped, and not taken
const LOG_KEEP = 30; // entries kept in the screen readers' log

/** Whether this browser wants captions (remembered across visits; off at first). */
export function captionsWanted() {
  try {
    return localStorage.getItem(KEY) === "on";
  } catch {
    return false;
  }
}

export function rememberCaptions(on) {
  try {
    localStorage.setItem(KEY, on ? "on" : "off");
  } catch { /* private mode: this visit only */ }
}

const ENTITIES = { amp: "&", lt: "<", gt: ">", nbsp: "\u00a0", lrm: "\u200e", rlm: "\u200f", quot: "\"", apos: "'" };

/** A WebVTT cue's text as plain text: tags (<v>, <i>, <c.x>, timestamps) dropped,
 * character references decoded. */
export function cueText(raw) {
  return String(raw || "")
    .replace(/<[^>]*>/g, "")
    .replace(/&(amp|lt|gt|nbsp|lrm|rlm|quot|apos);/g, (_m, name) => ENTITIES[name])
    .replace(/\s+/g, " ")
    .trim();
}

const SPEAKER = /^@([A-Za-z0-9_]{3,32}):\s*/;

/** "@handle: words" → {handle, words}; text without a speaker → {handle: null, words}. */
export function splitSpeaker(text) {
  const m = SPEAKER.exec(text);
  return m ? { handle: m[1].toLowerCase(), words: text.slice(m[0].length) } : { handle: null, words: text };
}

export class Captions {
  /**
   * @param {{nameOf: (handle: string) => (string|null)}} hooks
   * nameOf: a speaker's display name when the page knows it (the room's members).
   */
  constructor(hooks) {
    this.hooks = hooks;
    this.cues = []; // {key, start, end, until, handle, words, announced}, by start
    this.keys = new Set();
    this.on = false;
    this.lines = h("div", { class: "captions-lines", id: "captions-lines", "aria-hidden": "true" });
    this.empty = h("p", { class: "captions-empty", id: "captions-empty" }, "Captions show here when someone speaks.");
    this.log = h("div", { class: "visually-hidden", id: "captions-log", role: "log", "aria-live": "polite", "aria-label": "Captions" });
    this.el = h("div", { class: "captions", id: "captions", hidden: true }, this.lines, this.empty, this.log);
  }

  /** Captions on or off (off also forgets the cues: the player stops fetching them). */
  setOn(on) {
    this.on = on;
    if (!on) this.clear();
    show(this.el, on);
  }

  clear() {
    this.cues = [];
    this.keys.clear();
    this.lines.replaceChildren();
    this.log.replaceChildren();
    show(this.empty, true);
  }

  /** New cues ({start, end, text}, seconds on the audio's timeline) at playhead `now`. */
  add(cues, now) {
    if (!this.on) return;
    let added = false;
    for (const cue of cues) {
      const text = cueText(cue.text);
      if (!text || !Number.isFinite(cue.start)) continue;
      const end = Number.isFinite(cue.end) ? Math.max(cue.end, cue.start) : cue.start;
      if (end < now - FORGET_S) continue; // long past (and maybe forgotten already)
      const key = `${cue.start.toFixed(3)}|${text}`;
      if (this.keys.has(key)) continue; // the same cue again (a fragment loaded twice)
      this.keys.add(key);
      const { handle, words } = splitSpeaker(text);
      this.cues.push({ key, start: cue.start, end, until: Math.max(end, now) + HOLD_S, handle, words, announced: false });
      added = true;
    }
    if (added) {
      this.cues.sort((a, b) => a.start - b.start);
      this.render(now);
    }
  }

  /** Show what the playhead `now` has reached; announce each cue once, as it first shows. */
  render(now) {
    if (!this.on) return;
    if (this.cues.length && this.cues[0].until < now - FORGET_S) {
      this.cues = this.cues.filter((c) => {
        const keep = c.until >= now - FORGET_S;
        if (!keep) this.keys.delete(c.key);
        return keep;
      });
    }
    const reached = this.cues.filter((c) => c.start <= now);
    for (const cue of reached) {
      if (cue.announced) continue;
      cue.announced = true;
      this.log.append(h("p", {}, cue.handle ? `${this.name(cue.handle)}: ${cue.words}` : cue.words));
      while (this.log.childElementCount > LOG_KEEP) this.log.firstElementChild.remove();
    }
    const visible = reached.filter((c) => now < c.until).slice(-MAX_LINES);
    syncList(this.lines, visible, (c) => c.key, () => h("p", { class: "caption" },
      h("span", { class: "caption-speaker" }), h("span", { class: "caption-words" })), (p, c) => {
      const speaker = p.firstElementChild;
      setText(speaker, c.handle ? this.name(c.handle) : "");
      show(speaker, Boolean(c.handle));
      setText(p.lastElementChild, c.words);
    });
    show(this.empty, this.keys.size === 0); // until the first cue
  }

  name(handle) {
    return this.hooks.nameOf(handle) || `@${handle}`;
  }
}
