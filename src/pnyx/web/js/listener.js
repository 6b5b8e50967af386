// Being counted in the audience: join (anonymous, or with the account so blocks and
// removals apply), heartbeat every heartbeat_s, react, leave. None of it is needed to
// hear the space: when the server refuses or asks us to retry later, the audio keeps
// playing and we try again after Retry-After (with jitter).

import { ApiError, clientId, paths, post } from "./api.js";
import { Backoff, sleep } from "./retry.js";

export class ListenerSession {
  /**
   * @param {string} spaceId
   * @param {{accountToken: () => (string|null),
   *          onStatus: (status: string, err?: ApiError, delayMs?: number) => void,
   *          onMedia?: (media: object) => void,
   *          onFrontRow?: (frontrow: ({url: string, default: boolean}|null)) => void}} hooks
   * onMedia: the links a join answered with (signed for a private space: use them).
   * onFrontRow: the front row (push path) a join offered, or null.
   * status: joining | joined | waiting (retry later) | refused (for good) | left
   */
  constructor(spaceId, hooks) {
    this.spaceId = spaceId;
    this.hooks = hooks;
    this.token = null;
    this.heartbeatS = 15;
    this.running = false;
    this.paused = false;
    this.abort = null;
    this.backoff = new Backoff({ baseMs: 1000, maxMs: 30000 });
    this.reactBlockedUntil = 0;
  }

  get joined() {
    return Boolean(this.token);
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.abort = new AbortController();
    this.loop();
  }

  /** Stop heartbeats (and say goodbye) — e.g. on stage, the page closing, the end. */
  stop({ leave = true } = {}) {
    if (!this.running) return;
    this.running = false;
    this.abort?.abort();
    if (leave && this.token) {
      post(paths.leave(this.spaceId), { token: this.token, keepalive: true }).catch(() => {});
    }
    this.token = null;
    this.hooks.onStatus("left");
  }

  async loop() {
    const signal = this.abort.signal;
    while (this.running) {
      try {
        if (!this.token) {
          this.hooks.onStatus("joining");
          const token = this.hooks.accountToken();
          // Anonymous: the kept client id, so a reload counts as the same person.
          const res = await post(paths.join(this.spaceId, token ? null : clientId()), { token, signal });
          this.token = res.data.token;
          this.heartbeatS = res.data.heartbeat_s || this.heartbeatS;
          this.backoff.reset();
          if (res.data.media) this.hooks.onMedia?.(res.data.media);
          this.hooks.onFrontRow?.(res.data.frontrow || null);
          this.hooks.onStatus("joined");
        } else {
          const res = await post(paths.heartbeat(this.spaceId), { token: this.token, signal });
          this.heartbeatS = res.data.heartbeat_s || this.heartbeatS;
          this.backoff.reset();
          this.hooks.onStatus("joined");
        }
        await sleep(this.heartbeatS * 1000 * (0.9 + Math.random() * 0.1), signal);
      } catch (err) {
        if (!this.running || err.name === "AbortError") return;
        if (err instanceof ApiError && err.status === 401) {
          this.token = null; // expired listener token: join again
          continue;
        }
        if (err instanceof ApiError && !err.isNetwork && !err.isRetryLater) {
          this.running = false;
          this.token = null;
          this.hooks.onStatus("refused", err);
          return;
        }
        const delay = this.backoff.after(err);
        this.hooks.onStatus("waiting", err, delay);
        try {
          await sleep(delay, signal);
        } catch {
          return;
        }
      }
    }
  }

  /** Send a reaction. Rejects with ApiError (429 carries retryAfterS). */
  async react(emoji) {
    if (!this.token) {
      throw new ApiError(503, { kind: "unavailable", code: "not_joined", message: "not joined yet" });
    }
    try {
      await post(paths.reactions(this.spaceId), { token: this.token, json: { emoji } });
    } catch (err) {
      if (err instanceof ApiError && err.retryAfterS != null) {
        this.reactBlockedUntil = Date.now() + err.retryAfterS * 1000;
      }
      throw err;
    }
  }
}
