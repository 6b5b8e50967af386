// A clip's page (/c/{id}): its title, whose space it is from, a player and a download.
// A private space's clip is fetched with the signed-in account's token and played from
// memory (a blob: URL); the others play straight from their immutable URL.

import { get, paths } from "../api.js";
import { audioContext, makeAnalyser, tones } from "../audio.js";
import { currentSession } from "../session.js";
import { describeError, formatWhen, h, setText } from "../ui.js";

export function mount(main, { params }) {
  const [clipId] = params;
  document.title = "Clip · Pnyx";
  const heading = h("h1", {}, "Clip");
  const body = h("div", { class: "card" }, h("p", {}, "Loading…"));
  main.append(h("section", { class: "narrow" }, heading, body));
  let stopped = false;
  let objectUrl = null;
  let analyser = null;

  (async () => {
    const session = currentSession();
    const token = session?.token;
    let clip;
    try {
      clip = (await get(paths.clip(clipId), { token })).data;
    } catch (err) {
      const text = err.status === 404 ? "There is no such clip."
        : err.status === 401 ? "This clip is from a private space: sign in if you were invited."
          : err.status === 403 ? "This clip is from a private space: only people the host invited can hear it."
            : describeError(err);
      body.replaceChildren(h("p", { role: "alert" }, text,
        err.status === 401 ? h("span", {}, " ", h("a", { href: `/signin?next=/c/${clipId}`, "data-link": true }, "Sign in")) : null));
      return;
    }
    if (stopped) return;
    document.title = `${clip.title} (clip) · Pnyx`;
    setText(heading, clip.title);
    const audio = h("audio", { controls: true, preload: "metadata", class: "replay-audio", id: "clip-audio", "aria-label": `Clip: ${clip.title}` });
    const status = h("p", { class: "player-status", role: "status" });
    let src = clip.links.media;
    if (clip.visibility === "private") {
      const res = await fetch(clip.links.media, { headers: { Authorization: `Bearer ${token}` }, credentials: "omit" });
      if (!res.ok) {
        body.replaceChildren(h("p", { role: "alert" }, "Can't load this clip."));
        return;
      }
      objectUrl = URL.createObjectURL(await res.blob());
      src = objectUrl;
    }
    audio.src = src;
    audio.addEventListener("play", () => {
      // Route through an analyser once (a meter's worth of WebAudio), for diagnostics.
      if (analyser) return;
      try {
        const ctx = audioContext();
        const source = ctx.createMediaElementSource(audio);
        analyser = makeAnalyser(ctx);
        source.connect(analyser);
        analyser.connect(ctx.destination);
      } catch {
        analyser = null;
      }
    });
    audio.addEventListener("playing", () => setText(status, "Playing."));
    audio.addEventListener("ended", () => setText(status, "The end."));
    audio.addEventListener("error", () => setText(status, "Can't play this clip here."));
    window.pnyx = window.pnyx || {};
    window.pnyx.clip = {
      get currentTime() { return audio.currentTime; },
      get paused() { return audio.paused; },
      get duration() { return audio.duration; },
      get error() { return audio.error ? audio.error.code : null; },
      hearing: (freqs) => (analyser ? { source: "clip", ...tones(analyser, freqs) } : null),
    };
    const seconds = clip.duration.toFixed(1);
    body.replaceChildren(
      h("p", {}, `A ${seconds} s clip from `,
        h("a", { href: clip.links.space, "data-link": true, id: "clip-space-link" }, `@${clip.host}'s space`), "."),
      h("p", { class: "hint" }, `Clipped by @${clip.creator}, ${formatWhen(clip.created_at)}`),
      audio, status,
      h("p", {}, h("a", { href: src, download: `${clip.title}.m4a` }, "Download the clip (.m4a)")),
    );
  })();

  return () => {
    stopped = true;
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    if (window.pnyx) delete window.pnyx.clip;
  };
}
