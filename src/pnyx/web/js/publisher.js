// Speaking: the microphone over WebRTC, signalled WHIP-style. POST the SDP offer
// (after ICE gathering: no trickle) to /v1/spaces/{id}/publish, get the answer and a
// resource URL (DELETE it to stop). The same peer connection brings back this speaker's
// mix-minus (everyone but themself), which we play. Always to this page's own origin:
// whichever node (or edge) takes the request relays it to the stage node, so there is
// no redirect and no other origin. When the connection is lost we publish again by
// ourselves, at once (a small random delay, then backoff); publishing again replaces the
// old session on the server once the new one carries audio (make-before-break). Lost
// means: ICE/DTLS "failed", "disconnected" for more than DISCONNECTED_GRACE_MS, the
// mix-minus stopped arriving for STALL_MS (the stage node died: its packets stop at
// once, long before ICE notices), or the stage socket closed
// abnormally (restart(), called through stage_socket.js's onGoingAway). Before each
// offer we ask the publish URL (OPTIONS) for the STUN/TURN servers to use (ice.js).

import { ApiError, call, paths } from "./api.js";
import { audioContext, makeAnalyser } from "./audio.js";
import { fetchIceServers } from "./ice.js";
import { Backoff, sleep } from "./retry.js";

const GATHER_TIMEOUT_MS = 5000;
const DISCONNECTED_GRACE_MS = 1000;
const STALL_MS = 1200; // no mix-minus packet for this long: the stage node is gone
const STATS_EVERY_MS = 250;
const JITTER_MS = 400; // republish after 0–400 ms: a whole stage does not come back at once

const PROCESSING_KEY = "pnyx.voiceProcessing";

/** Echo cancellation, noise suppression and gain control: on unless turned off
 * (with headphones, or for music, a speaker may want the microphone as it is). */
export function voiceProcessing() {
  return localStorage.getItem(PROCESSING_KEY) !== "off";
}

function micConstraints(processing) {
  return {
    audio: {
      echoCancellation: processing,
      noiseSuppression: processing,
      autoGainControl: processing,
      channelCount: 1,
    },
    video: false,
  };
}

function gatheringComplete(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, GATHER_TIMEOUT_MS); // go with what we have
    function done() {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    }
    function check() {
      if (pc.iceGatheringState === "complete") done();
    }
    pc.addEventListener("icegatheringstatechange", check);
  });
}

export class Publisher {
  /**
   * @param {string} spaceId
   * @param {{token: () => string, output: HTMLAudioElement,
   *          onStatus?: (status: string, detail?: string) => void,
   *          onFatal?: (err: ApiError) => void, onAudioBlocked?: () => void}} opts
   * status: starting | connecting | live | reconnecting | stopped | error
   */
  constructor(spaceId, opts) {
    this.spaceId = spaceId;
    this.opts = opts;
    this.stream = null;
    this.track = null;
    this.pc = null;
    this.resource = null;
    this.muted = false;
    this.running = false;
    this.status = "stopped";
    this.backoff = new Backoff({ baseMs: 500, maxMs: 15000 });
    this.abort = null;
    this.disconnectTimer = 0;
    this.statsTimer = 0;
    this.received = { count: -1, at: 0 }; // mix-minus packets so far, and when it last grew
    this.reconnecting = null; // {gen, done}: the publish loop of one start()
    this.generation = 0; // one per start(): a loop of an earlier one never acts again
    this.micAnalyser = null;
    this.mixAnalyser = null;
  }

  setStatus(status, detail) {
    if (status !== this.status) console.debug(`pnyx publisher: ${this.status} -> ${status}`);
    this.status = status;
    this.opts.onStatus?.(status, detail);
  }

  /** Ask for the microphone and publish. Rejects if the microphone is refused. */
  async start({ muted = false } = {}) {
    if (this.running) return;
    this.running = true;
    this.generation += 1;
    this.abort = new AbortController();
    this.setStatus("starting");
    clearTimeout(this.releaseTimer);
    try {
      // Back on stage within the release grace period: keep the microphone we have.
      if (this.stream && this.track?.readyState === "live") this.useStream(this.stream);
      else this.useStream(await openMicrophone(micConstraints(voiceProcessing())));
    } catch (err) {
      this.running = false;
      this.setStatus("error", "Microphone unavailable or not allowed.");
      throw err;
    }
    this.setMuted(muted);
    this.reconnect(false);
  }

  useStream(stream) {
    this.stream = stream;
    this.track = stream.getAudioTracks()[0];
    this.track.enabled = !this.muted;
    try {
      const ctx = audioContext();
      this.micAnalyser = makeAnalyser(ctx);
      ctx.createMediaStreamSource(stream).connect(this.micAnalyser);
    } catch {
      this.micAnalyser = null;
    }
  }

  /** Turn voice processing on or off; while publishing, swap the microphone track in
   * place (no new session). */
  async setVoiceProcessing(on) {
    localStorage.setItem(PROCESSING_KEY, on ? "on" : "off");
    if (!this.running || !this.stream) return;
    const old = this.stream;
    this.useStream(await openMicrophone(micConstraints(on)));
    const sender = this.pc?.getSenders().find((s) => s.track?.kind === "audio" || s.track === null);
    if (sender) await sender.replaceTrack(this.track);
    for (const t of old.getTracks()) t.stop();
  }

  /**
   * Stop publishing: close the connection and release the microphone. `release`
   * also DELETEs the session (leaving the page); when the server ended it (off the
   * stage, the space over) there is nothing to delete.
   */
  async stop({ release = false } = {}) {
    if (!this.running) return;
    this.running = false;
    this.abort?.abort();
    clearTimeout(this.disconnectTimer);
    this.stopWatchdog();
    this.closePeer();
    if (release) await this.deleteResource();
    this.resource = null;
    this.opts.output.srcObject = null;
    if (release) {
      this.releaseMicrophone();
    } else {
      // Off the stage: stop sending now, release the microphone shortly. A quick way
      // back (a role flip) reuses it instead of opening the capture device again while
      // it is still closing, which can leave getUserMedia pending.
      if (this.track) this.track.enabled = false;
      clearTimeout(this.releaseTimer);
      this.releaseTimer = setTimeout(() => {
        if (!this.running) this.releaseMicrophone();
      }, MIC_RELEASE_GRACE_MS);
    }
    this.setStatus("stopped");
  }

  releaseMicrophone() {
    clearTimeout(this.releaseTimer);
    for (const t of this.stream?.getTracks() || []) t.stop();
    this.stream = null;
    this.track = null;
  }

  /** The microphone's own switch (the server's mute is set by the caller). */
  setMuted(muted) {
    this.muted = muted;
    if (this.track) this.track.enabled = !muted;
  }

  /** Publish again now, after 0–400 ms of jitter: the stage socket was lost (the server
   * went away, or the connection broke: its node may have been the stage node). */
  restart() {
    if (this.running) this.reconnect(true);
  }

  /** Mix-minus RTP packets received on `pc` so far (-1 when unknown). */
  async packetsReceived(pc) {
    try {
      let total = 0;
      (await pc.getStats()).forEach((r) => {
        if (r.type === "inbound-rtp" && r.kind === "audio") total += r.packetsReceived || 0;
      });
      return total;
    } catch {
      return -1;
    }
  }

  /** While connected, look at the mix-minus every STATS_EVERY_MS: the server sends a packet
   * every 20 ms whatever is said, so a silence of STALL_MS means the stage node is gone. */
  startWatchdog(pc) {
    this.stopWatchdog();
    this.received = { count: -1, at: performance.now() };
    const look = async () => {
      if (pc !== this.pc || !this.running) return;
      const count = await this.packetsReceived(pc);
      const now = performance.now();
      if (count !== this.received.count) {
        this.received = { count, at: now };
      } else if (count > 0 && now - this.received.at > STALL_MS && pc.connectionState !== "closed") {
        console.debug(`pnyx publisher: no mix-minus for ${Math.round(now - this.received.at)} ms`);
        this.reconnect(true);
        return;
      }
      if (pc === this.pc && this.running) this.statsTimer = setTimeout(look, STATS_EVERY_MS);
    };
    this.statsTimer = setTimeout(look, STATS_EVERY_MS);
  }

  stopWatchdog() {
    clearTimeout(this.statsTimer);
    this.statsTimer = 0;
  }

  closePeer() {
    if (this.pc) {
      this.pc.onconnectionstatechange = null;
      this.pc.ontrack = null;
      this.pc.close();
      this.pc = null;
    }
  }

  async deleteResource() {
    const resource = this.resource;
    this.resource = null;
    if (!resource) return;
    try {
      await call(resource, { method: "DELETE", token: this.opts.token(), keepalive: true });
    } catch {
      /* gone already, or the server is away: it times the session out */
    }
  }

  /** (Re)publish until it works or we are stopped; one loop per start() at a time.
   * A loop of an earlier start() (stopped while it waited on a connection that stop()
   * closed, which can take its full timeout) is not waited for, and never touches the
   * status again: a quick off-and-on the stage must not leave "Starting…" forever. */
  reconnect(isRetry) {
    const gen = this.generation;
    if (this.reconnecting?.gen === gen) return this.reconnecting.done;
    const current = () => this.running && this.generation === gen;
    const done = (async () => {
      if (isRetry) {
        this.setStatus("reconnecting");
        this.stopWatchdog();
        clearTimeout(this.disconnectTimer);
        try {
          await sleep(Math.random() * JITTER_MS, this.abort.signal);
        } catch {
          return;
        }
      }
      while (current()) {
        try {
          await this.publishOnce();
          this.backoff.reset();
          return;
        } catch (err) {
          if (!current() || err.name === "AbortError") return;
          if (err instanceof ApiError && !err.isNetwork && !err.isRetryLater && err.status !== 404
              && err.status < 500) {
            // Refused for good (not on stage any more, space over, signed out).
            this.setStatus("error", err.message);
            this.opts.onFatal?.(err);
            return;
          }
          const delay = this.backoff.after(err);
          this.setStatus("reconnecting", err.message);
          try {
            await sleep(delay, this.abort.signal);
          } catch {
            return;
          }
        }
      }
    })();
    const entry = { gen, done };
    this.reconnecting = entry;
    done.finally(() => {
      if (this.reconnecting === entry) this.reconnecting = null;
    });
    return done;
  }

  async publishOnce() {
    clearTimeout(this.disconnectTimer);
    this.stopWatchdog();
    this.closePeer();
    this.resource = null; // the new session replaces the old one once it carries audio
    this.setStatus(this.status === "reconnecting" ? "reconnecting" : "connecting");
    const iceServers = await fetchIceServers(paths.publish(this.spaceId), {
      token: this.opts.token(),
      signal: this.abort.signal,
    });
    if (!this.running) throw new DOMException("stopped", "AbortError");
    let pc;
    try {
      pc = new RTCPeerConnection({ iceServers, bundlePolicy: "max-bundle" });
    } catch (err) {
      // A server list this browser refuses: go without, as with none configured.
      console.warn("pnyx publisher: ICE servers refused:", err);
      pc = new RTCPeerConnection({ iceServers: [], bundlePolicy: "max-bundle" });
    }
    this.pc = pc;
    pc.addTransceiver(this.track, { direction: "sendrecv", streams: [this.stream] });
    pc.ontrack = (event) => this.playMixMinus(event);
    pc.onconnectionstatechange = () => this.watch(pc);
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    await gatheringComplete(pc);
    if (pc !== this.pc) throw new DOMException("replaced", "AbortError");
    const res = await call(paths.publish(this.spaceId), {
      method: "POST",
      token: this.opts.token(),
      sdp: pc.localDescription.sdp,
      signal: this.abort.signal,
    });
    if (pc !== this.pc || !this.running) throw new DOMException("replaced", "AbortError");
    const location = res.headers.get("Location");
    // On this origin: any node (or the edge) relays the DELETE to the stage node.
    this.resource = location ? new URL(location, res.url).href : null;
    await pc.setRemoteDescription({ type: "answer", sdp: res.data });
    await this.connected(pc);
    this.startWatchdog(pc);
    this.setStatus("live");
  }

  /** Resolve when the connection is up; reject if it fails first. */
  connected(pc) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error("the audio connection did not come up"));
      }, 15000);
      const check = () => {
        if (pc.connectionState === "connected") {
          cleanup();
          resolve();
        } else if (pc.connectionState === "failed" || pc.connectionState === "closed") {
          cleanup();
          reject(new Error(`the audio connection ${pc.connectionState}`));
        }
      };
      const cleanup = () => {
        clearTimeout(timer);
        pc.removeEventListener("connectionstatechange", check);
      };
      pc.addEventListener("connectionstatechange", check);
      check();
    });
  }

  watch(pc) {
    if (pc !== this.pc || !this.running) return;
    const state = pc.connectionState;
    if (state === "connected") {
      clearTimeout(this.disconnectTimer);
      if (this.status !== "live" && !this.reconnecting) this.setStatus("live");
    } else if (state === "failed" || state === "closed") {
      this.reconnect(true);
    } else if (state === "disconnected") {
      // May heal by itself in a moment; republish if it has not within the grace.
      this.setStatus("reconnecting");
      clearTimeout(this.disconnectTimer);
      this.disconnectTimer = setTimeout(() => {
        if (pc === this.pc && pc.connectionState !== "connected") this.reconnect(true);
      }, DISCONNECTED_GRACE_MS);
    }
  }

  playMixMinus(event) {
    const stream = event.streams[0] || new MediaStream([event.track]);
    const out = this.opts.output;
    out.srcObject = stream;
    out.play().catch((err) => {
      // No user gesture yet on this page (e.g. a reload): the page offers a button.
      if (err.name === "NotAllowedError") this.opts.onAudioBlocked?.();
    });
    try {
      const ctx = audioContext();
      this.mixAnalyser = makeAnalyser(ctx);
      ctx.createMediaStreamSource(stream).connect(this.mixAnalyser);
    } catch {
      this.mixAnalyser = null;
    }
  }
}


const MIC_TIMEOUT_MS = 8000;
const MIC_RELEASE_GRACE_MS = 3000;
const MIC_TRIES = 3;

/**
 * getUserMedia that cannot hang the page: a capture device that is still closing (the
 * microphone was released a moment ago, e.g. after a quick stage round trip) can leave
 * the request pending forever. Ask again after MIC_TIMEOUT_MS, up to MIC_TRIES times;
 * a late answer to an abandoned request is released at once.
 */
async function openMicrophone(constraints) {
  for (let attempt = 1; ; attempt++) {
    const asking = navigator.mediaDevices.getUserMedia(constraints);
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error("the microphone did not start in time")), MIC_TIMEOUT_MS);
    });
    try {
      return await Promise.race([asking, timeout]);
    } catch (err) {
      if (err.name === "NotAllowedError" || err.name === "NotFoundError" || attempt >= MIC_TRIES) throw err;
      asking.then((late) => late.getTracks().forEach((t) => t.stop()), () => {});
    } finally {
      clearTimeout(timer);
    }
  }
}
