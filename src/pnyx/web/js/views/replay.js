// The replay of a recorded space: the VOD playlist, and the single-file download; a
// captioned space's transcript under it (views/transcript.js).

import { get, isPrivateId, paths } from "../api.js";
import { tones } from "../audio.js";
import { Player } from "../player.js";
import { currentSession } from "../session.js";
import { describeError, formatWhen, h, setText } from "../ui.js";
import { AnalyticsPanel } from "./audience_panels.js";
import { TranscriptPanel } from "./transcript.js";

export function mount(main, { params }) {
  const [spaceId] = params;
  document.title = "Replay · Pnyx";
  const heading = h("h1", {}, "Replay");
  const body = h("div", { class: "card" }, h("p", {}, "Loading…"));
  const section = h("section", { class: "narrow" }, heading, body);
  main.append(section);
  let player = null;
  let transcript = null;
  let stopped = false;

  (async () => {
    let space;
    let links = null; // a private space's signed links
    try {
      if (isPrivateId(spaceId)) {
        const signedIn = currentSession();
        if (!signedIn) {
          body.replaceChildren(h("p", { role: "alert" }, "This space is private. ",
            h("a", { href: `/signin?next=/replay/${spaceId}`, "data-link": true }, "Sign in"), " if you were invited."));
          return;
        }
        links = (await get(paths.links(spaceId), { token: signedIn.token })).data.links;
      }
      space = (await get(links?.self || paths.space(spaceId))).data;
    } catch (err) {
      const text = err.status === 404 ? "There is no such space."
        : err.status === 403 ? "This space is private: only people the host invited can listen."
          : describeError(err);
      body.replaceChildren(h("p", { role: "alert" }, text));
      return;
    }
    if (stopped) return;
    document.title = `Replay: ${space.title} · Pnyx`;
    setText(heading, `Replay: ${space.title}`);
    const meta = h("p", { class: "space-meta" }, "Hosted by ", h("strong", {}, `@${space.host}`),
      space.started_at ? ` · ${formatWhen(space.started_at)}` : "");
    const session = currentSession();
    if (session && session.handle === space.host && space.state === "ended") {
      // The past space's figures, for its host (under the replay, or alone).
      const figures = new AnalyticsPanel(space.id, () => session.token);
      section.append(figures.el);
      figures.load();
    }
    if (space.state === "live" || space.state === "scheduled") {
      body.replaceChildren(meta, h("p", {}, "This space has not ended yet. ",
        h("a", { href: `/s/${space.id}`, "data-link": true }, "Go to the space"), "."));
      return;
    }
    if (!space.record) {
      body.replaceChildren(meta, h("p", { role: "status" }, "This space was not recorded, so there is no replay."));
      if (space.captions) {
        // No audio to play, but what was said can still be read.
        transcript = new TranscriptPanel(space, { seek: null });
        body.after(transcript.el);
        transcript.load();
      }
      return;
    }
    const audio = h("audio", { controls: true, preload: "none", class: "replay-audio", "aria-label": `Recording of ${space.title}` });
    const status = h("p", { class: "player-status", role: "status" });
    const play = h("button", { class: "button button-primary", type: "button" }, "Play the recording");
    player = new Player(audio, {
      onStatus: (s, detail) => setText(status, {
        loading: "Loading the recording…",
        playing: "Playing.",
        buffering: "Buffering…",
        reconnecting: "Connection lost: retrying…",
        ended: "The end.",
        error: detail || "Can't play this recording here.",
        blocked: "Press play to listen.",
        idle: "",
      }[s] ?? ""),
    });
    // For diagnostics and the end-to-end tests: what the replay plays right now.
    window.pnyx = window.pnyx || {};
    window.pnyx.replay = {
      get playerStatus() { return player.status; },
      hearing: (freqs) => (player.analyser ? { source: "replay", ...tones(player.analyser, freqs) } : null),
      get currentTime() { return audio.currentTime; },
      get transcriptLine() { return transcript ? transcript.current : null; },
    };
    const src = space.links?.replay || paths.replay(space.id);
    play.addEventListener("click", () => {
      play.hidden = true;
      player.play(src, { live: false });
    });
    if (space.captions) {
      transcript = new TranscriptPanel(space, {
        seek: (seconds) => {
          if (player.playing) {
            audio.currentTime = seconds;
            if (audio.paused) audio.play().catch(() => {});
          } else {
            play.hidden = true;
            player.play(src, { live: false, startAt: seconds });
          }
          transcript.follow(seconds);
        },
      });
      audio.addEventListener("timeupdate", () => transcript.follow(audio.currentTime));
      audio.addEventListener("seeked", () => transcript.follow(audio.currentTime));
    }
    body.replaceChildren(meta, play, audio, status,
      h("p", {}, h("a", { href: space.links?.recording || paths.recording(space.id), download: `${space.title}.m4a` }, "Download the recording (.m4a)")));
    if (transcript) {
      body.after(transcript.el); // under the player, above the host's figures
      transcript.load();
    }
  })();

  return () => {
    stopped = true;
    player?.destroy();
    transcript?.close();
    if (window.pnyx) delete window.pnyx.replay;
  };
}
