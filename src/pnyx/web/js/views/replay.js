// The replay of a recorded space: the VOD playlist, and the single-file download; a
// captioned space's transcript under it (views/transcript.js). Anyone signed in clips it
// from the playhead; its host may delete the recording (after a confirm step).

import { del, get, isPrivateId, paths, post, replayBeacon } from "../api.js";
import { tones } from "../audio.js";
import { Player } from "../player.js";
import { currentSession } from "../session.js";
import { describeError, formatWhen, h, setText, show, toast } from "../ui.js";
import { AnalyticsPanel } from "./audience_panels.js";
import { fillLengths, lengthSelect } from "./clip_length.js";
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
    if (!space.record || space.recording_deleted) {
      body.replaceChildren(meta, h("p", { role: "status", id: "no-replay" }, space.recording_deleted
        ? "The host deleted the recording of this space, so there is no replay any more."
        : "This space was not recorded, so there is no replay."));
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
      get playerStatus() { return player?.status ?? null; },
      hearing: (freqs) => (player?.analyser ? { source: "replay", ...tones(player.analyser, freqs) } : null),
      get currentTime() { return audio.currentTime; },
      get transcriptLine() { return transcript ? transcript.current : null; },
    };
    const src = space.links?.replay || paths.replay(space.id);
    // Plays and downloads are counted from here (the edges answer the replay itself):
    // one play per page the first time playback starts, one download per click.
    let counted = false;
    audio.addEventListener("playing", () => {
      if (counted) return;
      counted = true;
      replayBeacon(space.id, "play");
    });
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
    const deleted = () => {
      // What is left once the host deleted it: no player, no transcript to seek in.
      player?.destroy();
      player = null;
      transcript?.close();
      transcript?.el.remove();
      transcript = null;
      body.replaceChildren(meta, h("p", { role: "status", id: "no-replay" },
        "You deleted the recording of this space: nobody can play or download it any more."));
    };
    body.replaceChildren(meta, play, audio, status, clipControls(space, audio),
      h("p", {}, h("a", {
        href: space.links?.recording || paths.recording(space.id),
        download: `${space.title}.m4a`,
        onclick: () => replayBeacon(space.id, "download"),
      }, "Download the recording (.m4a)")),
      session && session.handle === space.host ? deleteControls(space, session, deleted) : "");
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

/** m:ss (or h:mm:ss) of `seconds`. */
function clock(seconds) {
  const t = Math.max(0, Math.floor(seconds));
  const mm = String(Math.floor(t / 60) % 60).padStart(t >= 3600 ? 2 : 1, "0");
  const ss = String(t % 60).padStart(2, "0");
  return t >= 3600 ? `${Math.floor(t / 3600)}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** "Clip from here": `seconds` of the recording from the playhead (POST …/clips with `at`),
 * cut at segment boundaries by the server (it may start up to a segment earlier). */
function clipControls(space, audio) {
  const length = lengthSelect("replay-clip-length");
  fillLengths(length, space);
  const button = h("button", { class: "button", type: "button", id: "replay-clip-button" });
  const note = h("p", { class: "hint", id: "replay-clip-note", role: "status" });
  const label = () => setText(button, `✂ Clip ${length.value} s from ${clock(audio.currentTime || 0)}`);
  label();
  audio.addEventListener("timeupdate", label);
  audio.addEventListener("seeked", label);
  length.addEventListener("change", label);
  button.addEventListener("click", async () => {
    const signedIn = currentSession();
    if (!signedIn) {
      toast("Sign in to make clips.");
      return;
    }
    const at = Math.max(0, audio.currentTime || 0);
    button.disabled = true;
    try {
      const json = { at, seconds: Number(length.value) };
      const clip = (await post(paths.clips(space.id), { token: signedIn.token, json })).data;
      note.replaceChildren("Your clip: ", h("a", { href: clip.links.page, "data-link": true, id: "replay-clip-link" },
        `${clip.title} (${Math.round(clip.duration)} s from ${clock(clip.start_s)})`));
      toast("Clip made.");
    } catch (err) {
      note.replaceChildren(describeError(err));
    } finally {
      button.disabled = false;
    }
  });
  return h("div", { class: "replay-clip" },
    h("div", { class: "inline-form clip-row" }, button, h("label", { for: "replay-clip-length" }, "Length"), length),
    note);
}

/** The host's "Delete recording", with a confirm step; `done` once it is deleted. */
function deleteControls(space, session, done) {
  const button = h("button", { class: "button button-danger", type: "button", id: "delete-recording" }, "Delete recording");
  const yes = h("button", { class: "button button-danger", type: "button", id: "delete-recording-yes" }, "Yes, delete it");
  const no = h("button", { class: "button button-quiet", type: "button", id: "delete-recording-no" }, "Cancel");
  const error = h("p", { class: "form-error", role: "alert" });
  const confirm = h("div", { class: "confirm", id: "delete-recording-confirm", role: "group", "aria-label": "Confirm deleting the recording", hidden: true },
    h("p", {}, "Delete this recording for good? Nobody will be able to play or download it any more; clips already made stay."),
    yes, no);
  button.addEventListener("click", () => {
    show(confirm, true);
    no.focus();
  });
  no.addEventListener("click", () => {
    show(confirm, false);
    button.focus();
  });
  yes.addEventListener("click", async () => {
    yes.disabled = true;
    try {
      await del(paths.deleteRecording(space.id), { token: session.token });
      toast("Recording deleted.");
      done();
    } catch (err) {
      error.textContent = describeError(err);
      yes.disabled = false;
    }
  });
  return h("div", { class: "delete-recording" }, button, confirm, error);
}
