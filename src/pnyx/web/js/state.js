// The space as every listener sees it: GET /v1/spaces/{id}/state?after=V, a long poll
// that answers when the version passes V (or after ~15 s with the same version).
// Without a token the response is public and shared by every listener (cacheable);
// stage members send their account token to also see who raised a hand.

import { ApiError, get, paths } from "./api.js";
import { Backoff, sleep } from "./retry.js";

const MIN_REPEAT_MS = 1000; // an unchanged answer sooner than this came from a cache

export class StatePoller {
  /**
   * @param {string} spaceId
   * @param {{onState: (s) => void, onError: (err, delayMs) => void, onRecovered: () => void,
   *          token: () => (string|null)}} hooks
   */
  constructor(spaceId, hooks) {
    this.spaceId = spaceId;
    this.hooks = hooks;
    this.version = null;
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
        const res = await get(paths.state(this.spaceId, asked), { token, signal });
        const state = res.data;
        this.backoff.reset();
        if (this.failing) {
          this.failing = false;
          this.hooks.onRecovered?.();
        }
        if (this.stopped) return;
        const changed = state.version !== asked;
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
