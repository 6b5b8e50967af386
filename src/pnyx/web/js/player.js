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
// opens the push path; once its buffer is primed it is lined up with what LL-HLS plays
// and made audible, and LL-HLS is muted at the same instant. hls.js is kept warm while
// the front row plays (playlist, parts and its place in them, muted by a gain of ours):
// a fallback must not wait for a cold start (seconds on a loaded machine). When the
// push fails (socket cut, a stall, a decoder error) or is turned off, LL-HLS takes over
// at the media time the front row had reached, and the push is tried again after a
// backoff.
//
// Lining the two up (media time: 48 kHz samples of the program, the front row's
// messages and the LL-HLS fMP4 decode times, tfdt, are on one timeline):
// - hls.js (1.7, fMP4 passthrough) places a sample with decode time tfdt (track
//   timescale ts) at tfdt/ts - initPTS/ts on the element's timeline: initPTS is
//   tfdt - start*ts of the first fragment it parses (start: that fragment's place by the
//   playlist), announced by INIT_PTS_FOUND and given to the SourceBuffer as its
//   timestampOffset (-initPTS/ts). So media time = (currentTime + initPTS/ts) * 48000
//   (less CODEC_SKEW to compare with what the front row sounds).
// - The front row's worklet reports the media time it plays (frontrow.js).
// - Front row -> LL-HLS: hls.js plays further behind live than the front row, so the
//   media time the front row reached is usually not buffered yet: the player waits
//   (silence, at most ALIGN_WAIT_MS after the front row went silent) until LL-HLS holds
//   it and ALIGN_AHEAD_S after it, then seeks there and unmutes: no repeat, a gap of
//   the difference in the two paths' delivery delay. When the wait runs out it plays from
//   where LL-HLS's buffer allows (a repeat, rather than a longer gap). It then plays a
//   little slower (CATCH_UP_RATE) until it has a safe buffer: no seam, no stall.
// - LL-HLS -> front row: the front row is ahead; it drops what is older than where
//   hls.js plays (usually nothing: the skip of the front row's lead is inherent) or
//   holds until it has it, then the gains change.
// Tolerance: a seam repeats or skips at most ALIGN_TOLERANCE_S (a couple of 20 ms
// frames; the two codecs' delays differ by ~15 ms) besides those inherent skips.

import { audioContext, makeAnalyser } from "./audio.js";
import { FrontRow, frontRowSupported, loadWorklet } from "./frontrow.js";
import { Backoff } from "./retry.js";

const HLS_MODULE = "/web/vendor/hls.esm.js";
const STALL_MS = 10000; // no progress for this long while playing: rebuild
// A failed front row: LL-HLS is heard at most this long after the front row went silent
// (a stall is noticed 300 ms late: that counts), lined up or not; with the seek's own
// tens of ms, the gap stays under half a second.
const ALIGN_WAIT_MS = 380;
const ALIGN_LEAVE_MS = 5000; // a front row turned off (it still plays): wait at most this
const ALIGN_AHEAD_S = 0.15; // LL-HLS buffered this far past the seam before it is heard (a part and a bit)
const ALIGN_POLL_MS = 20;
// After a fallback LL-HLS plays closer to live than it can hold (parts land every ~130 ms,
// late on a busy machine): it plays slower (time-stretched, same pitch) until it has
// SAFE_AHEAD_S buffered, rather than stall.
const CATCH_UP_RATE = 0.85;
const SAFE_AHEAD_S = 0.5;
export const ALIGN_TOLERANCE_S = 0.06; // a seam's repeat or skip beyond what is inherent (tests)
const RATE = 48000; // media time: samples at 48 kHz
// The two codecs' delays, not trimmed by either path: AAC-LC's priming (1024 samples, the
// server's AAC encoder) delays LL-HLS's sound behind its decode times, Opus's lookahead
// (312 samples at 48 kHz) the front row's. A front-row media time m sounds like LL-HLS's
// m + CODEC_SKEW.
const CODEC_SKEW = 1024 - 312;

let hlsModule = null;

async function loadHls() {
  if (!hlsModule) {
    hlsModule = import(HLS_MODULE).then((m) => m.default).catch(() => null);
  }
  return hlsModule;
}

/**
 * hls.js 1.7.4 (the latest release) stalls at the end of a live segment it joined at its
 * second part. The first part, behind the playhead, is never loaded. The browser reports
 * the buffer's end a microsecond short of the segment's end, so hls.js looks for the
 * next thing to load in that same segment. The segment counts as fully buffered (its
 * buffer check allows 0.2 s), yet it "still has an unloaded part". Nothing is loaded
 * until playback stalls: 0.1 s to 5.4 s of silence, once per start or seek (seen in
 * tests/e2e/test_edge_reload.py with hls.js's own log). Parts wholly behind the
 * buffered range that holds the playhead are never needed; marked as gaps (what hls.js
 * does with a part it may skip), they no longer hold the segment open. hls.js makes
 * new part objects on every playlist reload (keeping the mark), so this runs on every one.
 * Returns how many parts it marked. tests/e2e/test_web_hls_join.py.
 */
export function skipPartsBehind(hls, audio) {
  const parts = hls.latestLevelDetails?.partList;
  const ranges = audio.buffered;
  if (!parts?.length || !ranges.length) return 0;
  let start = null;
  for (let i = 0; i < ranges.length; i++) {
    if (ranges.start(i) <= audio.currentTime + 0.25 && audio.currentTime <= ranges.end(i) + 0.25) start = ranges.start(i);
  }
  if (start === null) return 0;
  let marked = 0;
  for (const part of parts) {
    if (part.loaded || part.gap || part.end > start + part.duration / 2) continue;
    part.gap = true;
    marked += 1;
  }
  return marked;
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
    Player.latest = this; // diagnostics and tests (the seams' measurements)
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
    this.startAt = null; // seconds: where playing starts (a transcript line's time; live: tests)
    this.partsSkipped = 0; // parts it marked (diagnostics, tests)
    this.frontRowUrl = null; // the push path's WebSocket (null: LL-HLS only)
    this.frontRow = null; // the current FrontRow attempt
    this.frontRowBackoff = new Backoff({ baseMs: 1000, maxMs: 10000 });
    this.frontRowTimer = 0;
    this.leaving = null; // a push path turned off, playing until LL-HLS does
    this.hlsGain = null; // LL-HLS into the output: 0 while the front row is heard (warm)
    this.hlsOffset = null; // initPTS/ts of hls.js: media time (s) = currentTime + this
    this.handoverTimer = 0;
    this.catchUpTimer = 0;
    this.awaitingHls = false; // a cold fallback: LL-HLS is heard once it plays
    this.seams = []; // [{to, mediaTime, waitedMs, repeatMs}] (diagnostics, tests)
    this.path = null; // what is heard: "frontrow" | "hls" | null
    this.switches = []; // [{to, at}] (diagnostics, tests)
    this.meter = null; // the output meter's latest report (frontrow_worklet.js)
    // Stalls once playing (diagnostics, tests): the element waited for data, hls.js saw
    // its buffer run dry, or the player was rebuilt.
    this.stalls = { waiting: 0, bufferStalled: 0, rebuilds: 0 };
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
   * recording starts (seconds), instead of its beginning (or, live, a position on hls.js's
   * timeline instead of its live edge: tests). */
  async play(src, { live = true, startAt = null } = {}) {
    this.stopEngine();
    this.src = src;
    this.live = live;
    this.startAt = startAt;
    this.wanted = true;
    this.backoff.reset();
    this.connectAnalyser();
    this.path = null;
    this.hlsAudible(true);
    if (this.live && this.frontRowUrl) this.tryFrontRow();
    await this.startEngine();
    this.startWatchdog();
  }

  /** A new URL for the same live stream (a private space's renewed signed link): the
   * next start uses it, and a warm hls.js muted under the front row is restarted on it
   * now (it would go on with a link that expires, and fail the next fallback). */
  setSource(src) {
    if (src === this.src) return;
    this.src = src;
    if (this.wanted && this.live && this.path === "frontrow" && this.engine) {
      this.stopEngine();
      this.startEngine();
    }
  }

  /** The space's front row (its WebSocket path) to play when it works, or null. */
  setFrontRow(url) {
    const wanted = url && frontRowSupported() ? url : null;
    if (wanted === this.frontRowUrl) return;
    if (wanted && this.frontRowUrl && this.frontRow) {
      // A new link to the same push (a private space's signed URL, from a later join):
      // the open socket was admitted with the old one and goes on; the next attempt
      // uses the new one. (Closing it would be a gap for nothing.)
      this.frontRowUrl = wanted;
      return;
    }
    this.frontRowUrl = wanted;
    if (!wanted && this.path === "frontrow" && this.frontRow && this.wanted && this.live) {
      // Turned off while it plays: it goes on until LL-HLS plays, lined up (no gap).
      clearTimeout(this.frontRowTimer);
      const row = this.frontRow;
      this.frontRow = null;
      this.toHls(row, { failed: false });
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
    const row = this.frontRow;
    this.frontRowBackoff.reset();
    // Where LL-HLS is heard now (null: it is not, or not mapped yet): the row plays that
    // media time next, or what it has after it.
    const at = this.path === "hls" && !this.audio.paused ? this.hlsMediaTime() : null;
    const switchOver = () => {
      if (row !== this.frontRow || !this.wanted) return;
      row.setAudible(true);
      this.hlsAudible(false); // the same instant: no gap, no echo; hls.js stays warm
      this.awaitingHls = false;
      this.seams.push({ to: "frontrow", mediaTime: row.playingMediaTime(), from: at, ctxTime: row.ctx.currentTime });
      this.heard("frontrow");
      this.lastProgress = performance.now();
      this.setStatus("playing");
    };
    if (at == null) switchOver();
    else row.alignTo(at).then(switchOver);
  }

  onFrontRowFailed(detail) {
    const row = this.frontRow;
    this.frontRow = null;
    if (!this.wanted) return;
    if (this.path === "frontrow") this.toHls(row, { failed: true });
    else if (!this.engine) this.startEngine();
    const delay = this.frontRowBackoff.next();
    console.debug(`front row: ${detail}; LL-HLS, push again in ${delay} ms`);
    this.frontRowTimer = setTimeout(() => this.tryFrontRow(), delay);
  }

  /** hls.js's media time now (48 kHz samples), or null when it is not known. */
  hlsMediaTime() {
    if (this.engine !== "hls.js" || this.hlsOffset == null || this.audio.readyState < 2) return null;
    return Math.round((this.audio.currentTime + this.hlsOffset) * RATE) - CODEC_SKEW;
  }

  hlsAudible(on) {
    if (this.hlsGain) this.hlsGain.gain.setValueAtTime(on ? 1 : 0, this.hlsGain.context.currentTime);
  }

  /**
   * From the front row `row` to LL-HLS, at the media time the row has reached (failed:
   * the end of what it received, once that has played out; turned off: where it plays,
   * while it goes on playing). hls.js is warm: wait until it has that media time
   * buffered with ALIGN_AHEAD_S after it, seek there and unmute it. A cold hls.js (not
   * started, or not mapped yet) is heard as soon as it plays.
   */
  toHls(row, { failed }) {
    clearTimeout(this.handoverTimer);
    if (!failed) this.leaving = row;
    if (this.hlsMediaTime() == null) {
      this.hlsAudible(true);
      if (this.engine && !this.audio.paused && this.audio.readyState >= 3) {
        this.hearHls(null, performance.now(), 0);
        return;
      }
      this.awaitingHls = true;
      if (!this.engine) {
        clearTimeout(this.retryTimer); // a rebuild was due: now
        this.startEngine();
      }
      return;
    }
    const began = performance.now();
    let limit = ALIGN_LEAVE_MS;
    if (failed) {
      // counted from when the row went silent (or will, once its last samples play)
      const out = row.playsOutAt();
      const silentMs = out == null ? 0 : (row.ctx.currentTime - out) * 1000;
      limit = Math.max(0, ALIGN_WAIT_MS - silentMs);
    }
    const step = () => {
      if (!this.wanted || this.path !== "frontrow" || this.frontRow) return; // superseded
      const offset = this.hlsOffset;
      const playing = row.playingMediaTime();
      if (this.hlsMediaTime() == null || playing == null) {
        this.hearHls(null, began, 0);
        return;
      }
      const waited = performance.now() - began;
      // a failed row: its last samples are still playing; LL-HLS starts where they end
      const target = failed ? (row.endMedia ?? playing) : playing;
      const tailDone = !failed || playing >= target;
      const at = (target + CODEC_SKEW) / RATE - offset;
      const buffered = this.audio.buffered;
      let end = null; // end of the buffered range holding `at`
      for (let i = 0; i < buffered.length; i++) {
        if (buffered.start(i) <= at + 0.01 && buffered.end(i) > at) end = buffered.end(i);
      }
      if (tailDone && end != null && end >= at + ALIGN_AHEAD_S) {
        this.hearHls(at, began, 0);
      } else if (waited >= limit && tailDone) {
        // Waited enough: play from where the buffer allows (a repeat, not a longer gap).
        const last = buffered.length ? buffered.end(buffered.length - 1) : this.audio.currentTime;
        const from = Math.max(this.audio.currentTime, Math.min(at, last - ALIGN_AHEAD_S));
        this.hearHls(from, began, Math.max(0, at - from) * 1000);
      } else {
        this.handoverTimer = setTimeout(step, ALIGN_POLL_MS);
      }
    };
    step();
  }

  /** LL-HLS heard from `at` (seconds on the element; null: where it is). */
  hearHls(at, began, repeatMs) {
    if (at != null && Math.abs(this.audio.currentTime - at) > 0.005) this.audio.currentTime = at;
    this.catchUp();
    this.hlsAudible(true);
    this.dropLeaving();
    this.seams.push({
      to: "hls",
      mediaTime: at == null || this.hlsOffset == null ? null : Math.round((at + this.hlsOffset) * RATE) - CODEC_SKEW,
      waitedMs: performance.now() - began,
      repeatMs,
      ctxTime: this.hlsGain ? this.hlsGain.context.currentTime : null,
    });
    this.heard("hls");
    this.lastProgress = performance.now();
    this.setStatus("playing");
  }

  /** Play LL-HLS slower until SAFE_AHEAD_S is buffered ahead (then at speed). */
  catchUp() {
    clearInterval(this.catchUpTimer);
    const audio = this.audio;
    const ahead = () => {
      const b = audio.buffered;
      for (let i = 0; i < b.length; i++) {
        if (b.start(i) <= audio.currentTime + 0.01 && b.end(i) > audio.currentTime) return b.end(i) - audio.currentTime;
      }
      return 0;
    };
    const check = () => {
      if (this.engine !== "hls.js" || this.path === "frontrow" || ahead() >= SAFE_AHEAD_S) {
        clearInterval(this.catchUpTimer);
        audio.playbackRate = 1;
      }
    };
    audio.preservesPitch = true;
    audio.playbackRate = CATCH_UP_RATE;
    this.catchUpTimer = setInterval(check, 100);
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
    clearTimeout(this.handoverTimer);
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
      this.hlsGain = ctx.createGain();
      this.audio._pnyxSource.connect(this.hlsGain);
      this.hlsGain.connect(this.analyser);
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
        meter.port.onmessage = (event) => {
          if (event.data.recording) this.onRecording?.(event.data);
          else this.meter = event.data;
        };
        this.meterNode = meter;
      })
      .catch(() => {});
  }

  /** Keep the last `seconds` of what is heard (diagnostics, tests: recording()). */
  record(seconds) {
    this.meterNode?.port.postMessage({ record: seconds });
  }

  /** What was kept since record(): {recording: Float32Array, sampleRate, endTime} (the
   * context's time just after its last sample). */
  recording() {
    if (!this.meterNode) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.onRecording = (data) => {
        this.onRecording = null;
        resolve(data);
      };
      this.meterNode.port.postMessage({ dump: true });
    });
  }

  /** Start counting the longest gap in what is heard afresh. */
  resetMeter() {
    this.meterNode?.port.postMessage({ reset: true });
    if (this.meter) this.meter = { ...this.meter, longestGapMs: 0 };
  }

  async startEngine() {
    const generation = ++this.generation;
    this.hlsOffset = null;
    this.engineStatus("loading");
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
      hls.on(Hls.Events.INIT_PTS_FOUND, (_event, data) => {
        // the element's timeline against media time (see the top of this file)
        if (generation === this.generation && data.id === "main") this.hlsOffset = data.initPTS / data.timescale;
      });
      hls.on(Hls.Events.ERROR, (_event, data) => {
        if (generation !== this.generation) return;
        if (data.details === Hls.ErrorDetails.BUFFER_STALLED_ERROR && this.path !== "frontrow") this.stalls.bufferStalled += 1;
        if (!data.fatal) return;
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
      hls.on(Hls.Events.LEVEL_LOADED, () => {
        if (generation === this.generation && this.live) {
          this.partsSkipped += skipPartsBehind(hls, this.audio);
        }
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
      if (err.name === "NotAllowedError") this.engineStatus("blocked", "Press play to listen.");
      // Other rejections (aborted load while rebuilding) are followed by events.
    }
  }

  stopEngine() {
    this.generation += 1;
    clearTimeout(this.retryTimer);
    clearInterval(this.catchUpTimer);
    this.audio.playbackRate = 1;
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
    this.stalls.rebuilds += 1;
    this.stopEngine();
    const delay = this.backoff.next();
    this.engineStatus("reconnecting", detail);
    this.retryTimer = setTimeout(() => {
      if (this.wanted) this.startEngine();
    }, delay);
  }

  /** A status from LL-HLS: not shown while the front row is heard (hls.js only keeps
   * warm then). */
  engineStatus(status, detail) {
    if (this.path !== "frontrow") this.setStatus(status, detail);
  }

  startWatchdog() {
    clearInterval(this.watchdog);
    this.watchdog = setInterval(() => {
      if (!this.wanted || this.status === "ended" || this.status === "blocked") return;
      if (this.status === "reconnecting") return;
      if (!this.live && this.audio.paused && this.audio.readyState >= 2) {
        // A replay the listener paused (to clip it, say) is not stalled: keep its place.
        this.lastProgress = performance.now();
        return;
      }
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
          if (this.status !== "playing" && !this.audio.paused) this.engineStatus("playing");
        }
        break;
      case "playing":
        this.lastProgress = performance.now();
        if (this.engine && (this.path !== "frontrow" || this.awaitingHls)) {
          this.awaitingHls = false;
          this.dropLeaving();
          this.heard("hls");
        }
        this.engineStatus("playing");
        break;
      case "waiting":
        if (this.path === "frontrow") break; // hls.js keeps warm; the front row is heard
        if (this.status === "playing") this.stalls.waiting += 1;
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
