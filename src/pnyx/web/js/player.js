// Listening: LL-HLS into an <audio> element. hls.js (from the npm registry, served from
// /web/vendor/) where Media Source Extensions exist, since it speaks LL-HLS (parts,
// blocking playlist reload) and lets us recover from errors; the browser's own HLS
// (Safari, iOS) where they don't. The player keeps going by itself through network
// blips: hls.js retries loads, and a fatal error or a stall rebuilds the player after a
// backoff, on the same playlist URL (listeners never rejoin to hear).
//
// Captions: a captioned space is played from its multivariant playlist, whose WebVTT
// rendition hls.js fetches only while captions are on (subtitleTrack, -1 when off) and
// hands over as cues (CUES_PARSED: it renders nothing itself, the page does); with the
// browser's own HLS the rendition is a text track, "hidden" while captions are on and
// "disabled" when off. Either way the cues go to hooks.onCues.
//
// The front row (frontrow.js): when the space offers it (setFrontRow), the player also
// opens the push path; once its buffer is primed it is made audible and hls.js is
// stopped at the same instant. When the push fails (socket cut, a stall, a decoder
// error) LL-HLS starts at once while the push's last samples play out, and the push is
// tried again after a backoff; each switch is one gain change, no gap of ours.

import { audioContext, makeAnalyser } from "./audio.js";
import { FrontRow, frontRowSupported, loadWorklet } from "./frontrow.js";
import { Backoff } from "./retry.js";

const HLS_MODULE = "/web/vendor/hls.esm.js";
const STALL_MS = 10000; // no progress for this long while playing: rebuild

let hlsModule = null;

async function loadHls() {
  if (!hlsModule) {
    hlsModule = import(HLS_MODULE).then((m) => m.default).catch(() => null);
  }
  return hlsModule;
}

const retryPolicy = (ttfbMs, loadMs, retries) => ({
  default: {
    maxTimeToFirstByteMs: ttfbMs,
    maxLoadTimeMs: loadMs,
    timeoutRetry: { maxNumRetry: retries, retryDelayMs: 0, maxRetryDelayMs: 0 },
    errorRetry: { maxNumRetry: retries, retryDelayMs: 500, maxRetryDelayMs: 4000, backoff: "exponential" },
  },
});

export class Player {
  /**
   * @param {HTMLAudioElement} audio
   * @param {{onStatus?: (status: string, detail?: string) => void,
   *          onCues?: (cues: {start: number, end: number, text: string}[]) => void}} hooks
   * status: idle | loading | playing | buffering | reconnecting | ended | error | blocked
   * onCues: caption cues as they arrive (seconds on the audio element's timeline).
   */
  constructor(audio, hooks = {}) {
    this.audio = audio;
    this.hooks = hooks;
    this.src = null;
    this.live = true;
    this.lowLatency = true; // the space says "standard" when its audience is big
    this.hls = null;
    this.engine = null; // "hls.js" | "native"
    this.status = "idle";
    this.wanted = false;
    this.backoff = new Backoff({ baseMs: 1000, maxMs: 15000 });
    this.retryTimer = 0;
    this.watchdog = 0;
    this.lastTime = -1;
    this.lastProgress = 0;
    this.mediaRecoveries = 0;
    this.analyser = null;
    this.generation = 0;
    this.captions = false; // the listener wants captions (when the source has them)
    this.startAt = null; // seconds: where a VOD starts playing (a transcript line's time)
    this.frontRowUrl = null; // the push path's WebSocket (null: LL-HLS only)
    this.frontRow = null; // the current FrontRow attempt
    this.frontRowBackoff = new Backoff({ baseMs: 1000, maxMs: 10000 });
    this.frontRowTimer = 0;
    this.leaving = null; // a push path turned off, playing until LL-HLS does
    this.path = null; // what is heard: "frontrow" | "hls" | null
    this.switches = []; // [{to, at}] (diagnostics, tests)
    this.meter = null; // the output meter's latest report (frontrow_worklet.js)
    this.onMediaEvent = this.onMediaEvent.bind(this);
    this.onTextTrack = this.onTextTrack.bind(this);
    this.onCueChange = this.onCueChange.bind(this);
    audio.textTracks?.addEventListener("addtrack", this.onTextTrack);
    for (const type of ["playing", "waiting", "pause", "ended", "error", "timeupdate"]) {
      audio.addEventListener(type, this.onMediaEvent);
    }
  }

  get playing() {
    return this.wanted;
  }

  setStatus(status, detail) {
    if (this.status === status && !detail) return;
    this.status = status;
    this.hooks.onStatus?.(status, detail);
  }

  /**
   * Follow the space's latency mode: "low" (LL-HLS parts and blocking playlist reloads)
   * or "standard" (whole segments, a few seconds more delay, about a third of the
   * requests), which a space switches to when its audience grows large. A player takes
   * the mode the space has when it starts and keeps it while it plays: moving a playing
   * listener from parts to whole segments would stall them while they fall a segment
   * further behind.
   */
  setLatency(mode) {
    this.lowLatency = mode !== "standard";
  }

  /** Captions on or off: fetch the subtitles rendition (and hand its cues over) or not. */
  setCaptions(on) {
    this.captions = Boolean(on);
    this.applyCaptions();
  }

  applyCaptions() {
    const hls = this.hls;
    if (hls) {
      const tracks = hls.subtitleTracks || [];
      if (this.captions && tracks.length) {
        const wanted = Math.max(0, tracks.findIndex((t) => t.default));
        if (hls.subtitleTrack !== wanted) hls.subtitleTrack = wanted;
        hls.subtitleDisplay = true;
      } else {
        hls.subtitleDisplay = false;
        if (hls.subtitleTrack !== -1) hls.subtitleTrack = -1;
      }
    }
    for (const track of this.audio.textTracks || []) {
      if (track.kind !== "subtitles" && track.kind !== "captions") continue;
      // With hls.js (renderTextTracksNatively off) there are none; these are native HLS's.
      track.mode = this.captions && this.engine === "native" ? "hidden" : "disabled";
    }
  }

  onTextTrack(event) {
    const track = event.track;
    if (!track || (track.kind !== "subtitles" && track.kind !== "captions")) return;
    track.removeEventListener("cuechange", this.onCueChange);
    track.addEventListener("cuechange", this.onCueChange);
    this.applyCaptions();
  }

  onCueChange() {
    this.collectNativeCues();
  }

  /** Native HLS: the subtitle tracks' latest cues (read on every time update too: a cue
   * that arrives after its end never becomes active, so no cuechange tells of it). */
  collectNativeCues() {
    if (!this.captions || this.engine !== "native") return;
    const out = [];
    for (const track of this.audio.textTracks || []) {
      if (track.mode !== "hidden" || !track.cues) continue;
      const cues = track.cues;
      for (let i = Math.max(0, cues.length - 50); i < cues.length; i++) {
        out.push({ start: cues[i].startTime, end: cues[i].endTime, text: cues[i].text });
      }
    }
    if (out.length) this.hooks.onCues?.(out);
  }

  /** Start playing `src` (call from a user gesture the first time); `startAt`: where a
   * recording starts (seconds), instead of its beginning. */
  async play(src, { live = true, startAt = null } = {}) {
    this.stopEngine();
    this.src = src;
    this.live = live;
    this.startAt = live ? null : startAt;
    this.wanted = true;
    this.backoff.reset();
    this.connectAnalyser();
    this.path = null;
    if (this.live && this.frontRowUrl) this.tryFrontRow();
    await this.startEngine();
    this.startWatchdog();
  }

  /** The space's front row (its WebSocket path) to play when it works, or null. */
  setFrontRow(url) {
    const wanted = url && frontRowSupported() ? url : null;
    if (wanted === this.frontRowUrl) return;
    this.frontRowUrl = wanted;
    if (!wanted && this.path === "frontrow" && this.frontRow && this.wanted && this.live) {
      // Turned off while it plays: it goes on until LL-HLS plays (no gap).
      clearTimeout(this.frontRowTimer);
      this.leaving = this.frontRow;
      this.frontRow = null;
      this.startEngine();
      return;
    }
    this.stopFrontRow();
    if (this.wanted && this.live) {
      if (wanted) this.tryFrontRow();
      else if (!this.engine) this.startEngine();
    }
  }

  tryFrontRow() {
    clearTimeout(this.frontRowTimer);
    if (!this.wanted || !this.frontRowUrl || !this.analyser) return;
    const ctx = audioContext();
    const row = new FrontRow(ctx, this.analyser, {
      onState: (state, detail) => {
        if (row !== this.frontRow) return;
        if (state === "playing") this.onFrontRowPlaying();
        else this.onFrontRowFailed(detail);
      },
    });
    this.frontRow = row;
    row.start(this.frontRowUrl).catch((err) => row.fail(String(err)));
  }

  onFrontRowPlaying() {
    this.frontRowBackoff.reset();
    this.frontRow.setAudible(true);
    if (this.engine) this.stopEngine(); // the same instant: no gap, no echo
    this.heard("frontrow");
    this.lastProgress = performance.now();
    this.setStatus("playing");
  }

  onFrontRowFailed(detail) {
    this.frontRow = null;
    if (!this.wanted) return;
    if (this.path === "frontrow" || !this.engine) this.startEngine();
    const delay = this.frontRowBackoff.next();
    console.debug(`front row: ${detail}; LL-HLS, push again in ${delay} ms`);
    this.frontRowTimer = setTimeout(() => this.tryFrontRow(), delay);
  }

  /** The push path that was turned off, once LL-HLS plays instead. */
  dropLeaving() {
    const row = this.leaving;
    this.leaving = null;
    if (row) {
      row.setAudible(false);
      row.close();
    }
  }

  stopFrontRow() {
    clearTimeout(this.frontRowTimer);
    this.dropLeaving();
    const row = this.frontRow;
    this.frontRow = null;
    if (row) {
      row.setAudible(false);
      row.close();
    }
    if (this.path === "frontrow") this.path = null;
  }

  heard(path) {
    if (this.path === path) return;
    this.path = path;
    this.switches.push({ to: path, at: performance.now() });
  }

  stop() {
    this.wanted = false;
    this.stopFrontRow();
    this.stopEngine();
    clearInterval(this.watchdog);
    this.setStatus("idle");
  }

  destroy() {
    this.stop();
    for (const type of ["playing", "waiting", "pause", "ended", "error", "timeupdate"]) {
      this.audio.removeEventListener(type, this.onMediaEvent);
    }
    this.audio.textTracks?.removeEventListener("addtrack", this.onTextTrack);
    for (const track of this.audio.textTracks || []) track.removeEventListener("cuechange", this.onCueChange);
  }

  connectAnalyser() {
    if (this.analyser) return;
    try {
      const ctx = audioContext();
      if (!this.audio._pnyxSource) this.audio._pnyxSource = ctx.createMediaElementSource(this.audio);
      this.analyser = makeAnalyser(ctx);
      this.audio._pnyxSource.connect(this.analyser);
      this.analyser.connect(ctx.destination);
      if (frontRowSupported()) this.connectMeter(ctx);
    } catch {
      this.analyser = null; // no WebAudio: play without a meter
    }
  }

  /** A meter on what is heard (both paths): gaps and frequency, for diagnostics. */
  connectMeter(ctx) {
    loadWorklet(ctx)
      .then(() => {
        const meter = new AudioWorkletNode(ctx, "pnyx-meter", { numberOfOutputs: 1, outputChannelCount: [1] });
        const mute = ctx.createGain();
        mute.gain.value = 0;
        this.analyser.connect(meter);
        meter.connect(mute);
        mute.connect(ctx.destination);
        meter.port.onmessage = (event) => { this.meter = event.data; };
        this.meterNode = meter;
      })
      .catch(() => {});
  }

  /** Start counting the longest gap in what is heard afresh. */
  resetMeter() {
    this.meterNode?.port.postMessage({ reset: true });
    if (this.meter) this.meter = { ...this.meter, longestGapMs: 0 };
  }

  async startEngine() {
    const generation = ++this.generation;
    this.setStatus("loading");
    this.lastProgress = performance.now();
    const Hls = await loadHls();
    if (generation !== this.generation || !this.wanted) return;
    if (Hls && Hls.isSupported()) {
      this.engine = "hls.js";
      const hls = new Hls({
        lowLatencyMode: this.live && this.lowLatency,
        backBufferLength: 30,
        enableWorker: true,
        startFragPrefetch: true,
        manifestLoadPolicy: retryPolicy(10000, 20000, 6),
        playlistLoadPolicy: retryPolicy(15000, 25000, 8),
        fragLoadPolicy: retryPolicy(10000, 20000, 8),
        startPosition: this.startAt ?? -1,
        // Captions: cues to us (CUES_PARSED), no text tracks; the page shows them.
        renderTextTracksNatively: false,
        enableCEA708Captions: false,
      });
      this.hls = hls;
      hls.on(Hls.Events.ERROR, (_event, data) => {
        if (generation !== this.generation || !data.fatal) return;
        if (data.type === Hls.ErrorTypes.MEDIA_ERROR && this.mediaRecoveries < 2) {
          this.mediaRecoveries += 1;
          hls.recoverMediaError();
          return;
        }
        this.retryLater(`${data.type}: ${data.details}`);
      });
      const captionsReady = () => {
        if (generation === this.generation) this.applyCaptions();
      };
      // hls.js picks its own subtitle track (none: ours is not DEFAULT) after announcing
      // the tracks, as each level loads: choose again once it has, and whenever it
      // switches away from what the listener wants.
      hls.on(Hls.Events.MANIFEST_PARSED, captionsReady);
      hls.on(Hls.Events.LEVEL_LOADED, captionsReady);
      hls.on(Hls.Events.SUBTITLE_TRACK_SWITCH, () => setTimeout(captionsReady, 0));
      hls.on(Hls.Events.CUES_PARSED, (_event, data) => {
        if (generation !== this.generation || data.type !== "subtitles" || !this.captions) return;
        this.hooks.onCues?.((data.cues || []).map((c) => ({ start: c.startTime, end: c.endTime, text: c.text })));
      });
      hls.on(Hls.Events.FRAG_BUFFERED, () => {
        if (generation === this.generation) {
          this.backoff.reset();
          this.mediaRecoveries = 0;
        }
      });
      hls.attachMedia(this.audio);
      hls.loadSource(this.src);
    } else if (this.audio.canPlayType("application/vnd.apple.mpegurl")) {
      this.engine = "native";
      if (this.startAt != null) {
        const at = this.startAt;
        this.audio.addEventListener("loadedmetadata", () => { this.audio.currentTime = at; }, { once: true });
      }
      this.audio.src = this.src;
      this.applyCaptions();
    } else {
      this.engine = null;
      this.wanted = false;
      this.setStatus("error", "This browser cannot play live audio (no HLS and no Media Source Extensions).");
      return;
    }
    try {
      await this.audio.play();
    } catch (err) {
      if (generation !== this.generation) return;
      if (err.name === "NotAllowedError") this.setStatus("blocked", "Press play to listen.");
      // Other rejections (aborted load while rebuilding) are followed by events.
    }
  }

  stopEngine() {
    this.generation += 1;
    clearTimeout(this.retryTimer);
    if (this.hls) {
      this.hls.destroy();
      this.hls = null;
    }
    if (this.engine === "native") {
      this.audio.removeAttribute("src");
      this.audio.load();
    }
    this.engine = null;
    if (!this.audio.paused) this.audio.pause();
  }

  retryLater(detail) {
    if (!this.wanted) return;
    this.stopEngine();
    const delay = this.backoff.next();
    this.setStatus("reconnecting", detail);
    this.retryTimer = setTimeout(() => {
      if (this.wanted) this.startEngine();
    }, delay);
  }

  startWatchdog() {
    clearInterval(this.watchdog);
    this.watchdog = setInterval(() => {
      if (!this.wanted || this.status === "ended" || this.status === "blocked") return;
      if (this.status === "reconnecting") return;
      if (this.path === "frontrow" && this.frontRow) {
        this.lastProgress = performance.now(); // the push path watches itself
        return;
      }
      if (performance.now() - this.lastProgress > STALL_MS) {
        this.lastProgress = performance.now();
        this.retryLater("stalled");
      }
    }, 1000);
  }

  onMediaEvent(event) {
    if (!this.wanted) return;
    switch (event.type) {
      case "timeupdate":
        this.collectNativeCues();
        if (this.audio.currentTime !== this.lastTime) {
          this.lastTime = this.audio.currentTime;
          this.lastProgress = performance.now();
          if (this.status !== "playing" && !this.audio.paused) this.setStatus("playing");
        }
        break;
      case "playing":
        this.lastProgress = performance.now();
        if (this.engine) {
          this.dropLeaving();
          this.heard("hls");
        }
        this.setStatus("playing");
        break;
      case "waiting":
        this.setStatus("buffering");
        break;
      case "ended":
        this.setStatus("ended");
        break;
      case "error":
        if (this.engine === "native") this.retryLater("media error");
        break;
      default:
        break;
    }
  }
}
