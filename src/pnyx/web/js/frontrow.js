// The front row: the space's program pushed over a WebSocket from the edge (nchan), as
// binary messages of 20 ms Opus frames (src/pnyx/protocol/frontrow.py: version, frame
// count, sequence number, program media time in 48 kHz samples, then length-prefixed
// Opus packets), decoded with WebCodecs' AudioDecoder and played by an AudioWorklet
// with a small adaptive buffer (frontrow_worklet.js). About a third of a second from
// mouth to ear, against a second or more for LL-HLS.
//
// A FrontRow connects once: it reports "playing" when its buffer is primed and "failed"
// when the socket closes or errs, when nothing arrives for STALL_MS, or when the
// decoder fails. The player (player.js) falls back to LL-HLS and tries again later.
//
// Media time: the decoded chunks carry their program media time (the message's, + 960
// per frame, as the AudioData timestamp in microseconds) to the worklet, which reports
// what it plays; `playingMediaTime()` estimates it now (frozen at the end of what was
// received once the row is closed), `alignTo(m)` makes the row play m next.

const WORKLET = "/web/js/frontrow_worklet.js";
const STALL_MS = 300; // messages come every 20-60 ms: this long without one is a cut
const HEADER = 14;

const modules = new WeakMap(); // AudioContext -> Promise of its worklet module

export function frontRowSupported() {
  return typeof AudioDecoder !== "undefined" && typeof AudioWorkletNode !== "undefined" && typeof WebSocket !== "undefined";
}

export function loadWorklet(ctx) {
  if (!modules.has(ctx)) modules.set(ctx, ctx.audioWorklet.addModule(WORKLET));
  return modules.get(ctx);
}

/** Parse one message (DataView over an ArrayBuffer); null if it is not one. */
export function parseMessage(buffer) {
  const view = new DataView(buffer);
  if (buffer.byteLength < HEADER || view.getUint8(0) !== 1) return null;
  const count = view.getUint8(1);
  const seq = view.getUint32(2);
  const mediaTime = Number(view.getBigUint64(6));
  const frames = [];
  let at = HEADER;
  for (let i = 0; i < count; i++) {
    if (at + 2 > buffer.byteLength) return null;
    const size = view.getUint16(at);
    at += 2;
    if (at + size > buffer.byteLength) return null;
    frames.push(new Uint8Array(buffer, at, size));
    at += size;
  }
  return { seq, mediaTime, frames };
}

export class FrontRow {
  /**
   * @param {AudioContext} ctx
   * @param {AudioNode} output where the decoded audio goes (through this.gain)
   * @param {{onState: (state: "playing"|"failed", detail?: string) => void}} hooks
   */
  constructor(ctx, output, hooks) {
    this.ctx = ctx;
    this.output = output;
    this.hooks = hooks;
    this.ws = null;
    this.decoder = null;
    this.node = null;
    this.gain = null;
    this.state = "connecting";
    this.stallTimer = 0;
    this.lastSeq = null;
    this.mediaTime = null; // of the newest message
    this.messages = 0;
    this.lost = 0;
    this.stats = {};
    this.endMedia = null; // media time just after the last sample handed to the worklet
    this.position = null; // {media, at}: the worklet's latest report (context time)
    this.aligning = null; // the resolve of alignTo's promise
    this.waitPrimed = false; // aligned, holding until primed again
  }

  async start(url, { audible = false } = {}) {
    await loadWorklet(this.ctx);
    if (this.state === "failed") return;
    this.node = new AudioWorkletNode(this.ctx, "pnyx-frontrow", { numberOfInputs: 0, outputChannelCount: [1] });
    this.gain = this.ctx.createGain();
    this.gain.gain.value = audible ? 1 : 0;
    this.node.connect(this.gain);
    this.gain.connect(this.output);
    this.node.port.onmessage = (event) => this.onWorklet(event.data);
    this.decoder = new AudioDecoder({
      output: (data) => this.onDecoded(data),
      error: (err) => this.fail(`decoder: ${err.message || err}`),
    });
    this.decoder.configure({ codec: "opus", sampleRate: 48000, numberOfChannels: 1 });
    const ws = new WebSocket(new URL(url, location.href).href.replace(/^http/, "ws"));
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onmessage = (event) => this.onMessage(event.data);
    ws.onerror = () => this.fail("socket error");
    ws.onclose = (event) => this.fail(`socket closed (${event.code})`);
    this.armStall();
  }

  /** Make it heard (or not): the switch between the two paths is this gain. */
  setAudible(on) {
    if (this.gain) this.gain.gain.setValueAtTime(on ? 1 : 0, this.ctx.currentTime);
  }

  armStall() {
    clearTimeout(this.stallTimer);
    this.stallTimer = setTimeout(() => this.fail("stalled"), this.state === "connecting" ? 5000 : STALL_MS);
  }

  onMessage(data) {
    if (this.state === "failed" || typeof data === "string") return;
    const msg = parseMessage(data);
    if (!msg) return this.fail("a message that is not a front-row message");
    if (this.lastSeq !== null && msg.seq !== ((this.lastSeq + 1) >>> 0)) this.lost += 1;
    this.lastSeq = msg.seq;
    this.mediaTime = msg.mediaTime;
    this.messages += 1;
    msg.frames.forEach((frame, i) => {
      const t = msg.mediaTime + i * 960;
      this.decoder.decode(new EncodedAudioChunk({ type: "key", timestamp: Math.round((t / 48) * 1000), data: frame }));
    });
    if (this.state === "connecting") this.state = "receiving";
    this.armStall();
  }

  onDecoded(data) {
    const pcm = new Float32Array(data.numberOfFrames);
    data.copyTo(pcm, { planeIndex: 0, format: "f32-planar" });
    const mediaTime = Math.round((data.timestamp * 48) / 1000);
    data.close();
    if (!this.node) return;
    this.endMedia = mediaTime + pcm.length;
    this.node.port.postMessage({ pcm, mediaTime }, [pcm.buffer]);
  }

  /** The media time (48 kHz samples) the row plays now, by the worklet's latest report;
   * null when it has not played yet. A row that stopped receiving stops at endMedia. */
  playingMediaTime() {
    const p = this.position;
    if (!p || p.media == null) return null;
    const now = p.media + Math.round((this.ctx.currentTime - p.at) * 48000);
    return this.endMedia == null ? now : Math.min(now, this.endMedia);
  }

  /** The context's time when what was received has played (or will have played) out;
   * null when unknown. */
  playsOutAt() {
    const p = this.position;
    if (!p || this.endMedia == null) return null;
    return p.at + Math.max(0, this.endMedia - p.media) / 48000;
  }

  /** Play media time `mediaTime` next (drop what is older; hold when it has not come
   * yet); resolves once the worklet has done so, with whether it is primed. */
  alignTo(mediaTime) {
    if (!this.node) return Promise.resolve(false);
    return new Promise((resolve) => {
      this.aligning = resolve;
      this.node.port.postMessage({ skipTo: mediaTime });
    });
  }

  /** The worklet aligned: resolve alignTo now if it still plays, else once it is primed
   * again (it holds until it has the media time asked for and its target after it). */
  onAligned(primed) {
    if (!primed) {
      this.waitPrimed = true;
      return;
    }
    const resolve = this.aligning;
    this.aligning = null;
    resolve?.(true);
  }

  onWorklet(stats) {
    if (stats.position !== undefined) {
      // (a silent worklet keeps the last position: the estimate stops at endMedia)
      if (stats.position != null) this.position = { media: stats.position, at: stats.at };
      return;
    }
    if (stats.aligned) {
      this.onAligned(stats.primed);
      return;
    }
    this.stats = { ...this.stats, ...stats };
    if (stats.primed && this.waitPrimed) {
      this.waitPrimed = false;
      this.onAligned(true);
    }
    if (stats.primed && this.state !== "playing" && this.state !== "failed") {
      this.state = "playing";
      this.hooks.onState("playing");
    }
  }

  fail(detail) {
    if (this.state === "failed") return;
    this.state = "failed";
    this.close();
    this.hooks.onState("failed", detail);
  }

  close() {
    clearTimeout(this.stallTimer);
    if (this.ws) {
      this.ws.onclose = this.ws.onerror = this.ws.onmessage = null;
      try { this.ws.close(); } catch { /* already closed */ }
      this.ws = null;
    }
    if (this.decoder && this.decoder.state !== "closed") {
      try { this.decoder.close(); } catch { /* closed */ }
    }
    this.decoder = null;
    // What the worklet still holds plays out while the other path starts.
    // Its position reports go on (playingMediaTime) until it is disconnected.
    const node = this.node;
    const gain = this.gain;
    this.node = null;
    this.gain = null;
    this.aligning?.(false);
    this.aligning = null;
    setTimeout(() => {
      if (node) node.port.onmessage = null;
      node?.disconnect();
      gain?.disconnect();
    }, 400);
  }
}
