// The stage WebSocket (host, co-hosts, speakers): instant events, and the server's way
// of knowing the host is still here. Optional for the page (the state long poll carries
// everything); we use its events to refresh at once, and reconnect with backoff while we
// are on stage. Any close but a normal (1000) or a final one (removed, not on stage, no
// such space, ended, replaced) means the server went away or the connection broke: the
// node may have died, and it may have been the stage node, so onGoingAway tells the
// publisher at once (it publishes again, after a little jitter).

import { paths } from "./api.js";
import { Backoff } from "./retry.js";

// Close codes (src/pnyx/protocol/stage.py CloseCode).
const FINAL = new Set([4001, 4003, 4004, 4010]); // unauthorised, not on stage, no space, ended
const NOT_LOST = new Set([1000, 4009, ...FINAL]); // normal; replaced (connected elsewhere)

export class StageSocket {
  /**
   * @param {string} spaceId
   * onGoingAway: the socket was lost (1001 going away, 1006 abnormal, …): not a normal or
   * final close.
   * @param {{token: () => string, onEvent: (msg) => void, onGoingAway?: () => void,
   *          onClosed?: (code: number, reason: string) => void}} hooks
   */
  constructor(spaceId, hooks) {
    this.spaceId = spaceId;
    this.hooks = hooks;
    this.ws = null;
    this.running = false;
    this.timer = 0;
    this.backoff = new Backoff({ baseMs: 1000, maxMs: 20000 });
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.open();
  }

  stop() {
    this.running = false;
    clearTimeout(this.timer);
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.close(1000, "bye");
      this.ws = null;
    }
  }

  open() {
    const url = new URL(paths.stageSocket(this.spaceId), location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: "auth", v: 1, token: this.hooks.token() }));
    ws.onmessage = (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      if (msg.type === "ping") {
        ws.send(JSON.stringify({ type: "pong", v: 1, seq: msg.seq }));
        return;
      }
      if (msg.type === "welcome") this.backoff.reset();
      if (msg.type !== "pong" && msg.type !== "error") this.hooks.onEvent(msg);
    };
    ws.onerror = () => {}; // onclose follows
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.hooks.onClosed?.(event.code, event.reason);
      if (!this.running || FINAL.has(event.code)) {
        this.running = false;
        return;
      }
      if (!NOT_LOST.has(event.code)) this.hooks.onGoingAway?.();
      this.timer = setTimeout(() => this.running && this.open(), this.backoff.next());
    };
  }
}
