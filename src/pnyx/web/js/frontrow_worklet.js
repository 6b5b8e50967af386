// AudioWorklet processors (loaded with audioWorklet.addModule):
//
// "pnyx-frontrow": plays the front row's decoded 48 kHz mono samples (posted by
// frontrow.js) through a small adaptive buffer. It starts once `target` is buffered; an
// underrun (nothing to play) raises the target by 20 ms (at most 300 ms); a steady second
// with more than target + 40 ms standing drops the excess (the delay never creeps up), and
// ten seconds without an underrun lower the target by 10 ms (at least 40 ms). It resamples
// linearly when the context does not run at 48 kHz.
//
// "pnyx-meter": watches what the page plays (the sum of both paths): the longest run of
// silence since it was reset (a gap), and a zero-crossing estimate of the frequency.

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
    this.port.onmessage = (event) => {
      const data = event.data;
      if (data.pcm) {
        this.chunks.push(data.pcm);
        this.buffered += data.pcm.length;
      } else if (data.flush) {
        this.chunks = [];
        this.pos = 0;
        this.buffered = 0;
        this.primed = false;
      }
    };
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
    this.port.onmessage = (event) => {
      if (event.data.reset) {
        this.longest = 0;
        this.heard = 0;
        this.gap = 0;
      }
    };
  }

  process(inputs) {
    const input = inputs[0] && inputs[0][0];
    const n = 128;
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
