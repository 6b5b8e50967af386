// AudioWorklet processors (loaded with audioWorklet.addModule):
//
// "pnyx-frontrow": plays the front row's decoded 48 kHz mono samples (posted by
// frontrow.js) through a small adaptive buffer. It starts once `target` is buffered; an
// underrun (nothing to play) raises the target by 20 ms (at most 300 ms); a steady second
// with more than target + 40 ms standing drops the excess (the delay never creeps up), and
// ten seconds without an underrun lower the target by 10 ms (at least 40 ms). It resamples
// linearly when the context does not run at 48 kHz.
//
// Media time: each chunk comes with the program media time of its first sample (48 kHz
// samples, the LL-HLS timeline: frontrow.js). The processor knows the media time it
// plays (its read position) and reports it with the context's time every 32 blocks, so
// the player can line LL-HLS up with it. `{skipTo: m}` drops what is older than media
// time m (now and in chunks still to come) and answers `{aligned}`: the front row then
// plays m next, or holds (unprimed) until it has m and its target after it.
//
// "pnyx-meter": watches what the page plays (the sum of both paths): the longest run of
// silence since it was reset (a gap), and a zero-crossing estimate of the frequency;
// on request (`{record: seconds}`) it keeps the last seconds of what is played, and
// `{dump: true}` posts them (`{recording, sampleRate, endTime}`: diagnostics, tests).

const IN_RATE = 48000;

class FrontRowProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.chunks = [];
    this.pos = 0; // fractional read position in chunks[0]
    this.buffered = 0; // input samples not yet played
    this.step = IN_RATE / sampleRate;
    this.minTarget = 0.04 * IN_RATE;
    this.target = 0.06 * IN_RATE;
    this.maxTarget = 0.3 * IN_RATE;
    this.primed = false;
    this.underruns = 0;
    this.dropped = 0;
    this.lowest = Infinity; // the least buffered in the current second
    this.blocks = 0;
    this.sinceUnderrun = 0;
    this.starts = []; // media time of each chunk's first sample (null: unknown)
    this.dropBefore = null; // media time: drop what is older (skipTo)
    this.reportBlocks = 0;
    this.port.onmessage = (event) => {
      const data = event.data;
      if (data.pcm) {
        this.push(data.pcm, Number.isFinite(data.mediaTime) ? data.mediaTime : null);
      } else if (data.skipTo != null) {
        this.skipTo(data.skipTo);
      } else if (data.flush) {
        this.chunks = [];
        this.starts = [];
        this.pos = 0;
        this.buffered = 0;
        this.primed = false;
      }
    };
  }

  push(pcm, mediaTime) {
    let chunk = pcm;
    let start = mediaTime;
    if (this.dropBefore != null && start != null && start < this.dropBefore) {
      const cut = Math.min(chunk.length, this.dropBefore - start);
      this.dropped += cut;
      chunk = chunk.subarray(cut);
      start += cut;
      if (!chunk.length) return;
    }
    this.chunks.push(chunk);
    this.starts.push(start);
    this.buffered += chunk.length;
  }

  /** Media time of the next sample played (null when nothing is buffered or unknown). */
  readMedia() {
    if (!this.chunks.length || this.starts[0] == null) return null;
    return this.starts[0] + Math.floor(this.pos);
  }

  skipTo(mediaTime) {
    this.dropBefore = mediaTime;
    let now = this.readMedia();
    while (now != null && now < mediaTime && this.buffered > 0) {
      const n = Math.min(mediaTime - now, this.chunks[0].length - Math.floor(this.pos));
      this.advance(n);
      this.dropped += n;
      now = this.readMedia();
    }
    if (this.buffered < this.target) this.primed = false; // hold until it has enough
    this.port.postMessage({ aligned: true, primed: this.primed, mediaTime: this.readMedia() ?? mediaTime });
  }

  sampleAt(i) {
    // the input sample i positions after the read position (i >= 0)
    let k = Math.floor(this.pos) + i;
    for (const chunk of this.chunks) {
      if (k < chunk.length) return chunk[k];
      k -= chunk.length;
    }
    return 0;
  }

  advance(n) {
    this.pos += n;
    this.buffered -= n;
    while (this.chunks.length && this.pos >= this.chunks[0].length) {
      this.pos -= this.chunks[0].length;
      this.chunks.shift();
      this.starts.shift();
    }
    if (this.buffered < 0) this.buffered = 0;
  }

  process(_inputs, outputs) {
    const out = outputs[0][0];
    const need = out.length * this.step + 1;
    if (!this.primed && this.buffered >= this.target) this.primed = true;
    if (this.primed && this.buffered < need) {
      this.primed = false;
      this.underruns += 1;
      this.sinceUnderrun = 0;
      this.target = Math.min(this.maxTarget, this.target + 0.02 * IN_RATE);
    }
    if (this.primed) {
      if (this.step === 1) {
        for (let i = 0; i < out.length; i++) out[i] = this.sampleAt(i);
      } else {
        const frac = this.pos - Math.floor(this.pos);
        for (let i = 0; i < out.length; i++) {
          const x = frac + i * this.step;
          const a = Math.floor(x);
          const t = x - a;
          out[i] = this.sampleAt(a) * (1 - t) + this.sampleAt(a + 1) * t;
        }
      }
      this.advance(out.length * this.step);
      this.lowest = Math.min(this.lowest, this.buffered);
    }
    this.blocks += 1;
    this.sinceUnderrun += out.length / sampleRate;
    if (++this.reportBlocks >= 32) {
      // where it plays, for the player's alignment with LL-HLS (null: silent)
      this.reportBlocks = 0;
      this.port.postMessage({ position: this.primed ? this.readMedia() : null, at: currentTime });
    }
    if (this.blocks * out.length >= sampleRate) {
      // once a second: drop a standing excess; ease the target down when calm
      if (this.primed && this.lowest > this.target + 0.04 * IN_RATE) {
        const excess = Math.floor(this.lowest - this.target);
        this.advance(excess);
        this.dropped += excess;
      }
      if (this.sinceUnderrun > 10 && this.target > this.minTarget) {
        this.target = Math.max(this.minTarget, this.target - 0.01 * IN_RATE);
        this.sinceUnderrun = 0;
      }
      this.lowest = Infinity;
      this.blocks = 0;
      this.port.postMessage({
        primed: this.primed,
        bufferedMs: (this.buffered / IN_RATE) * 1000,
        targetMs: (this.target / IN_RATE) * 1000,
        underruns: this.underruns,
        droppedMs: (this.dropped / IN_RATE) * 1000,
      });
    } else if (this.primed !== this.reported) {
      this.port.postMessage({ primed: this.primed, bufferedMs: (this.buffered / IN_RATE) * 1000 });
    }
    this.reported = this.primed;
    return true;
  }
}

const SILENT = 1e-3; // -60 dBFS: below this a block counts as silence

class MeterProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.gap = 0; // seconds of silence now
    this.longest = 0; // since the last reset
    this.heard = 0; // seconds of sound since the last reset
    this.crossings = 0;
    this.counted = 0;
    this.freq = 0;
    this.last = 0;
    this.blocks = 0;
    this.ring = null; // the last seconds played, when recording
    this.written = 0;
    this.port.onmessage = (event) => {
      const data = event.data;
      if (data.reset) {
        this.longest = 0;
        this.heard = 0;
        this.gap = 0;
      } else if (data.record) {
        this.ring = new Float32Array(Math.round(Math.min(data.record, 60) * sampleRate));
        this.written = 0;
      } else if (data.dump && this.ring) {
        const ring = this.ring;
        const n = Math.min(this.written, ring.length);
        const out = new Float32Array(n);
        const at = this.written % ring.length;
        if (this.written > ring.length) {
          out.set(ring.subarray(at));
          out.set(ring.subarray(0, at), ring.length - at);
        } else {
          out.set(ring.subarray(0, n));
        }
        this.port.postMessage({ recording: out, sampleRate, endTime: currentTime }, [out.buffer]);
      }
    };
  }

  process(inputs) {
    const input = inputs[0] && inputs[0][0];
    const n = 128;
    if (this.ring) {
      const ring = this.ring;
      for (let i = 0; i < n; i++) {
        ring[this.written % ring.length] = input ? input[i] : 0;
        this.written += 1;
      }
    }
    let sum = 0;
    if (input) {
      for (let i = 0; i < input.length; i++) {
        const x = input[i];
        sum += x * x;
        if ((x >= 0) !== (this.last >= 0)) this.crossings += 1;
        this.last = x;
      }
    }
    const rms = input ? Math.sqrt(sum / input.length) : 0;
    const seconds = n / sampleRate;
    if (rms < SILENT) {
      this.gap += seconds;
      if (this.heard > 0) this.longest = Math.max(this.longest, this.gap);
    } else {
      this.gap = 0;
      this.heard += seconds;
    }
    this.counted += n;
    if (this.counted >= sampleRate / 4) {
      this.freq = (this.crossings / 2) / (this.counted / sampleRate);
      this.crossings = 0;
      this.counted = 0;
    }
    if (++this.blocks % 32 === 0) {
      this.port.postMessage({
        longestGapMs: this.longest * 1000,
        gapMs: this.gap * 1000,
        heardMs: this.heard * 1000,
        freqHz: this.freq,
        rmsDb: 20 * Math.log10(Math.max(rms, 1e-9)),
      });
    }
    return true;
  }
}

registerProcessor("pnyx-frontrow", FrontRowProcessor);
registerProcessor("pnyx-meter", MeterProcessor);
