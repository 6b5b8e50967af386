"""Prometheus metrics of the stage node's media (served at /metrics with the rest).

Kept apart from services/metrics.py so the media layer can record without importing
the services layer. Every name starts with ``pnyx_media_``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

TICK_LATENESS = Histogram(
    "pnyx_media_tick_lateness_seconds",
    "How late each 20 ms tick of the mix clock's thread ran against its absolute schedule",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25),
)
TICKS = Counter(
    "pnyx_media_ticks_total", "Mix clock ticks run (one 20 ms frame of every running space)"
)
TICKS_SKIPPED = Counter(
    "pnyx_media_ticks_skipped_total",
    "Mix clock ticks given up because the clock's thread fell too far behind (an audio gap)",
)
MIX_SECONDS = Histogram(
    "pnyx_media_mix_seconds",
    "Time spent on one space's tick (mix, mix-minus, levels, Opus-encoding every mix-minus)",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02),
)
FRAMES_DROPPED = Counter(
    "pnyx_media_frames_dropped_total",
    "20 ms frames dropped by a full drop-oldest queue",
    ["queue"],  # inbound (speaker → mixer), outbound (mix-minus → speaker), encoder
)
FRAMES_TRIMMED = Counter(
    "pnyx_media_frames_trimmed_total",
    "20 ms frames dropped from a jitter queue found above its target depth when read "
    "(a backlog turned away instead of becoming latency)",
    ["queue"],  # inbound (speaker → mixer), outbound (mix-minus → speaker)
)
FRAMES_CONCEALED = Counter(
    "pnyx_media_frames_concealed_total",
    "20 ms frames of a speaker's voice the decoder made up for lost or late packets: "
    "rebuilt from the next packet's in-band FEC, or by packet loss concealment",
    ["how"],  # fec, plc
)
PLAYOUT_DROPPED = Counter(
    "pnyx_media_playout_dropped_total",
    "Speakers' packets or frames dropped by their playout buffers: late (arrived after "
    "their deadline), stale (a backlog whose deadlines had passed, e.g. after the event "
    "loop stalled) or shrink (skipped to bring the delay down)",
    ["why"],  # late, stale, shrink
)
PLAYOUT_RESYNCS = Counter(
    "pnyx_media_playout_resyncs_total",
    "Times a speaker's playout point moved to their newest packet because every packet "
    "for 200 ms came too late to play: a stream slower than real time (a sender that "
    "cannot keep up, or this node's event loop falling behind)",
)
PLAYOUT_DELAY = Histogram(
    "pnyx_media_playout_delay_seconds",
    "A speaker's playout delay beyond their fastest packet (the jitter their link showed), "
    "observed at each estimate (every half a second of each speaker)",
    buckets=(0.0, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2),
)
DECODE_ERRORS = Counter(
    "pnyx_media_decode_errors_total", "Speakers' packets the Opus decoder refused (corrupt)"
)
SESSIONS = Gauge("pnyx_media_sessions", "Publish sessions (peer connections) on this node")
SPACES = Gauge("pnyx_media_spaces", "Spaces whose media runs on this node")
PUBLISHES = Counter("pnyx_media_publishes_total", "Publish requests by outcome", ["outcome"])
REPLACEMENTS = Counter(
    "pnyx_media_replacements_total",
    "Publish sessions that waited to replace a speaker's working one (make-before-break), "
    "by outcome (replaced: it carried audio; dropped: it ended first)",
    ["outcome"],
)
SESSIONS_ENDED = Counter(
    "pnyx_media_sessions_ended_total",
    "Publish sessions ended, by why (closed, idle, connect_timeout, connection_failed, …)",
    ["why"],
)
STORE_FAILURES = Counter(
    "pnyx_media_store_failures_total", "Parts/segments the origin or recorder failed to store"
)
ICE_CANDIDATES_DROPPED = Counter(
    "pnyx_media_ice_candidates_dropped_total",
    "Speakers' ICE candidates the stage node would not check (media/ice.py)",
    ["why"],  # not_ip, not_unicast, own_machine, not_allowed
)
CAPTION_WINDOWS = Counter(
    "pnyx_media_caption_windows_total",
    "Caption windows by what became of them: recognised, or shed (queue full, too late, "
    "the node shedding load, the recogniser failing): captions go before audio does",
    ["outcome"],  # done, queue, late, shed, failed
)
CAPTION_SECONDS = Histogram(
    "pnyx_media_caption_seconds",
    "Time the recogniser took for one caption window (wall clock: it runs in its own threads)",
    buckets=(0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2),
)
