// Waiting politely: exponential backoff with jitter, and Retry-After honoured (never
// earlier than the server asked, spread a little later so a crowd does not come back
// in lockstep).

/** Resolve after `ms`, or reject with AbortError when `signal` aborts. */
export function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new DOMException("aborted", "AbortError"));
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, Math.max(0, ms));
    function onAbort() {
      clearTimeout(timer);
      reject(new DOMException("aborted", "AbortError"));
    }
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** `seconds` of Retry-After plus 0–50 % jitter, in ms. */
export function retryAfterMs(seconds) {
  return Math.round(seconds * 1000 * (1 + Math.random() * 0.5));
}

export class Backoff {
  constructor({ baseMs = 500, maxMs = 15000 } = {}) {
    this.baseMs = baseMs;
    this.maxMs = maxMs;
    this.attempt = 0;
  }

  /** The next delay ("full jitter" between half and all of the exponential step). */
  next() {
    const step = Math.min(this.maxMs, this.baseMs * 2 ** this.attempt);
    this.attempt += 1;
    return Math.round(step / 2 + Math.random() * (step / 2));
  }

  /** The delay after `err`: Retry-After when the server gave one, else the next step. */
  after(err) {
    if (err && err.retryAfterS != null) {
      this.attempt += 1;
      return retryAfterMs(err.retryAfterS);
    }
    return this.next();
  }

  reset() {
    this.attempt = 0;
  }
}
