// How long a clip is: a choice of lengths up to the node's `clip_max_s`, starting at its
// `clip_default_s` (both in the space document, GET /v1/spaces/{id}), shared by the live
// space's "Clip the last N s" and the replay's "Clip from here".

import { h } from "../ui.js";

const STEPS = [5, 10, 15, 20, 30, 45, 60];

/** The lengths to offer for `space` (seconds), the default among them, in order. */
export function clipLengths(space) {
  const max = space?.clip_max_s ?? 60;
  const dflt = Math.min(space?.clip_default_s ?? 30, max);
  const seconds = new Set([...STEPS.filter((s) => s <= max), dflt, max].map((s) => Math.round(s)));
  return { lengths: [...seconds].sort((a, b) => a - b), dflt: Math.round(dflt) };
}

/** A <select> of clip lengths (`id` for its label), set to the default. */
export function lengthSelect(id) {
  return h("select", { id, class: "clip-length", "aria-label": "Clip length" });
}

/** Fill `select` with the lengths for `space`, keeping the listener's choice if offered. */
export function fillLengths(select, space) {
  const { lengths, dflt } = clipLengths(space);
  const chosen = Number(select.value) || dflt;
  select.replaceChildren(...lengths.map((s) => h("option", { value: String(s) }, `${s} s`)));
  select.value = String(lengths.includes(chosen) ? chosen : dflt);
}
