// WebAudio: one AudioContext for the page (created on a user gesture), analysers for
// the level meters, and a spectrum probe (what frequencies are loud right now) that the
// page exposes for diagnostics and the end-to-end tests.

let context = null;

export function audioContext() {
  if (!context) context = new AudioContext({ latencyHint: "interactive" });
  if (context.state === "suspended") context.resume().catch(() => {});
  return context;
}

export function makeAnalyser(ctx) {
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 4096;
  analyser.smoothingTimeConstant = 0.5;
  return analyser;
}

/** RMS level in dBFS of what the analyser hears now (-Infinity for silence). */
export function levelDb(analyser) {
  const buf = new Float32Array(analyser.fftSize);
  analyser.getFloatTimeDomainData(buf);
  let sum = 0;
  for (const x of buf) sum += x * x;
  return 10 * Math.log10(sum / buf.length);
}

const FLOOR_BAND = [80, 6000]; // Hz: the speech band, where the noise floor is taken

/**
 * The analyser's magnitude (dB) at each of `freqs` (strongest of the three nearest
 * bins), and the median over the speech band (the noise floor: the median ignores the
 * few bins that tones occupy).
 */
export function tones(analyser, freqs) {
  const bins = new Float32Array(analyser.frequencyBinCount);
  analyser.getFloatFrequencyData(bins);
  const hzPerBin = analyser.context.sampleRate / analyser.fftSize;
  const at = {};
  for (const f of freqs) {
    const i = Math.round(f / hzPerBin);
    at[f] = Math.max(bins[i - 1] ?? -Infinity, bins[i], bins[i + 1] ?? -Infinity);
  }
  const lo = Math.ceil(FLOOR_BAND[0] / hzPerBin);
  const hi = Math.min(bins.length - 1, Math.floor(FLOOR_BAND[1] / hzPerBin));
  const sorted = Array.from(bins.subarray(lo, hi + 1)).filter(Number.isFinite).sort((a, b) => a - b);
  const floor = sorted.length ? sorted[Math.floor(sorted.length / 2)] : -Infinity;
  let peak = 0;
  for (let i = 1; i < bins.length; i++) if (bins[i] > bins[peak]) peak = i;
  return { at, floor, peakHz: peak * hzPerBin, peakDb: bins[peak], levelDb: levelDb(analyser) };
}

/**
 * Drive a meter element (its --level CSS variable, 0 to 1) from the analyser that
 * `getAnalyser()` returns, while `active()` holds. Returns a stop function.
 */
export function runMeter(getAnalyser, meter, active = () => true) {
  let frame = 0;
  let stopped = false;
  let shown = -1;
  const tick = () => {
    if (stopped) return;
    const analyser = active() ? getAnalyser() : null;
    let level = 0;
    if (analyser) {
      const db = levelDb(analyser);
      level = Number.isFinite(db) ? Math.max(0, Math.min(1, (db + 60) / 60)) : 0;
    }
    const rounded = Math.round(level * 50) / 50;
    if (rounded !== shown) {
      shown = rounded;
      meter.style.setProperty("--level", rounded.toFixed(2));
    }
    frame = requestAnimationFrame(tick);
  };
  frame = requestAnimationFrame(tick);
  return () => {
    stopped = true;
    cancelAnimationFrame(frame);
  };
}
