// The space as every listener sees it: GET /v1/spaces/{id}/state?after=V, a long poll
// that answers when the version passes V (or after ~15 s with the same version).
// Without a token the response is public and shared by every listener (cacheable);
// stage members send their account token to also see who raised a hand.

import { ApiError, get, paths, withAfter } from "./api.js";
import { Backoff, sleep } from "./retry.js";

const MIN_REPEAT_MS = 1000; // an unchanged answer sooner than this came from a cache
const OLDER_BELIEVED = 3; // older versions in a row before the page believes them

export class StatePoller {
  /**
   * @param {string} spaceId
   * @param {{onState: (s) => void, onError: (err, delayMs) => void, onRecovered: () => void,
   *          token: () => (string|null), link?: () => (string|null)}} hooks
   * link: the state link to read (a private space's is signed); default the plain one.
   */
  constructor(spaceId, hooks) {
    this.spaceId = spaceId;
    this.hooks = hooks;
    this.version = null;
    this.older = 0;
    this.stopped = false;
    this.failing = false;
    this.controller = null;
    this.wantNow = false;
    this.backoff = new Backoff({ baseMs: 500, maxMs: 10000 });
  }

  start() {
    this.loop();
  }

  stop() {
    this.stopped = true;
    this.controller?.abort();
  }

  /** Read the current state now (after an action), without waiting for a change. */
  refresh() {
    this.wantNow = true;
    this.controller?.abort();
  }

  async loop() {
    while (!this.stopped) {
      this.controller = new AbortController();
      const { signal } = this.controller;
      const asked = this.wantNow ? null : this.version;
      this.wantNow = false;
      const started = performance.now();
      try {
        const token = this.hooks.token();
        const link = this.hooks.link?.();
        const url = link ? withAfter(link, asked) : paths.state(this.spaceId, asked);
        const res = await get(url, { token, signal });
        const state = res.data;
        this.backoff.reset();
        if (this.failing) {
          this.failing = false;
          this.hooks.onRecovered?.();
        }
        if (this.stopped) return;
        // Versions only grow. An older one is a copy from a cache (the browser's or an
        // edge's, up to a second old) that must not undo what the page already shows —
        // e.g. take a new speaker off the stage for a moment. Several older answers in a
        // row mean the server's live state was reset: then believe it.
        if (this.version !== null && state.version < this.version && this.older < OLDER_BELIEVED) {
          this.older += 1;
          if (performance.now() - started < MIN_REPEAT_MS) {
            await sleep(MIN_REPEAT_MS + Math.random() * 500, signal);
          }
          continue;
        }
        this.older = 0;
        const changed = state.version !== this.version;
        this.version = state.version;
        if (changed) this.hooks.onState(state);
        if (state.state === "ended" || state.state === "cancelled") {
          // Nothing will change any more.
          return;
        }
        if (!changed && performance.now() - started < MIN_REPEAT_MS) {
          await sleep(MIN_REPEAT_MS + Math.random() * 500, signal);
        }
      } catch (err) {
        if (this.stopped) return;
        if (err.name === "AbortError") continue; // refresh() or stop()
        const delay = this.backoff.after(err);
        if (err instanceof ApiError && err.status === 404) {
          this.hooks.onError?.(err, null);
          return;
        }
        this.failing = true;
        this.hooks.onError?.(err, delay);
        try {
          await sleep(delay, signal);
        } catch {
          /* refreshed while waiting: go at once */
        }
      }
    }
  }
}
