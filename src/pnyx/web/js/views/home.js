// Home: a search box, the spaces that are live now, largest audience first (title, host,
// how many listen, who is on stage), the scheduled ones and the recent replays.

import { get, paths } from "../api.js";
import { followingLive } from "../notifications.js";
import { retryAfterMs } from "../retry.js";
import { currentSession } from "../session.js";
import { describeError, fill, formatWhen, h, hue, initials, plural, ROLE_LABEL } from "../ui.js";

const REFRESH_MS = 10000;

function avatar(handle, extra = "") {
  return h("span", { class: `avatar avatar-small ${extra}`, style: { "--hue": hue(handle) }, "aria-hidden": "true" }, initials(handle));
}

const STATE_PEEKS = 12; // live spaces whose state we read to show who is speaking

function stageLine(stage) {
  if (!stage.length) return "Nobody on stage";
  return stage.map((m) => {
    const role = m.role === "speaker" ? "" : ` (${ROLE_LABEL[m.role].toLowerCase()})`;
    return h("span", { class: m.speaking ? "who speaking" : "who" },
      `@${m.handle}${role}`, m.speaking ? h("span", { class: "visually-hidden" }, ", speaking") : null);
  }).flatMap((el, i) => (i ? [", ", el] : [el]));
}

function liveCard(space, state) {
  const stage = state ? state.stage : space.stage || [];
  const listeners = state ? state.listeners : space.listeners;
  const speaking = stage.filter((m) => m.speaking).map((m) => m.handle);
  return h("li", { class: "space-card" },
    h("a", { class: "space-link", href: `/s/${space.id}`, "data-link": true },
      h("span", { class: "badge badge-live" }, "Live"),
      h("span", { class: "space-title" }, space.title)),
    h("p", { class: "space-meta" },
      h("span", {}, "Hosted by ", h("a", { href: `/u/${space.host}`, "data-link": true, class: "host-link" }, h("strong", {}, `@${space.host}`))),
      h("span", { class: "count" }, `${plural(listeners, "listener")}`)),
    h("p", { class: "space-stage" },
      h("span", { class: "avatars", "aria-hidden": "true" },
        stage.slice(0, 5).map((m) => avatar(m.handle, m.speaking ? "is-speaking" : ""))),
      h("span", {}, h("span", { class: "visually-hidden" }, "On stage: "), stageLine(stage))),
    speaking.length
      ? h("p", { class: "space-speaking" }, "Speaking now: ", speaking.map((x) => `@${x}`).join(", "))
      : null,
  );
}

function scheduledCard(space) {
  return h("li", { class: "space-card" },
    h("a", { class: "space-link", href: `/s/${space.id}`, "data-link": true },
      h("span", { class: "badge" }, "Scheduled"),
      h("span", { class: "space-title" }, space.title)),
    h("p", { class: "space-meta" },
      h("span", {}, "Hosted by ", h("a", { href: `/u/${space.host}`, "data-link": true, class: "host-link" }, h("strong", {}, `@${space.host}`))),
      h("time", { datetime: space.scheduled_start || "" }, formatWhen(space.scheduled_start))),
  );
}

function replayCard(space) {
  return h("li", { class: "space-card" },
    h("a", { class: "space-link", href: `/replay/${space.id}`, "data-link": true },
      h("span", { class: "badge" }, "Replay"),
      h("span", { class: "space-title" }, space.title)),
    h("p", { class: "space-meta" },
      h("span", {}, "Hosted by ", h("strong", {}, `@${space.host}`)),
      space.ended_at ? h("time", { datetime: space.ended_at }, formatWhen(space.ended_at)) : null),
  );
}

function resultCard(space) {
  if (space.state === "live") return liveCard(space, null);
  if (space.state === "scheduled") return scheduledCard(space);
  return space.record && !space.recording_deleted ? replayCard(space) : h("li", { class: "space-card" },
    h("a", { class: "space-link", href: `/s/${space.id}`, "data-link": true },
      h("span", { class: "badge" }, "Ended"), h("span", { class: "space-title" }, space.title)),
    h("p", { class: "space-meta" }, h("span", {}, "Hosted by ", h("strong", {}, `@${space.host}`))));
}

function searchSection(signal) {
  const input = h("input", { type: "search", id: "search-input", name: "q", placeholder: "Titles and hosts", autocomplete: "off", maxlength: "200", required: true });
  const results = h("ul", { class: "space-list", id: "search-results", "aria-live": "polite" });
  const heading = h("h2", { id: "search-heading", hidden: true }, "Results");
  const form = h("form", { class: "inline-form search-form", role: "search", id: "search-form", "aria-label": "Search spaces" },
    h("label", { for: "search-input" }, "Search spaces"), input,
    h("button", { class: "button", type: "submit" }, "Search"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const q = input.value.trim();
    if (!q) return;
    heading.hidden = false;
    results.setAttribute("aria-busy", "true");
    try {
      const found = (await get(paths.search(q), { signal })).data.spaces;
      fill(results, found.length ? found.map(resultCard) : h("li", { class: "empty" }, `Nothing matches “${q}”.`));
    } catch (err) {
      if (err.name === "AbortError") return;
      fill(results, h("li", { class: "empty" }, describeError(err)));
    }
    results.removeAttribute("aria-busy");
  });
  return h("section", { class: "search", "aria-labelledby": "search-heading" }, form, heading, results);
}

export function mount(main) {
  document.title = "Pnyx: live audio spaces";
  const session = currentSession();
  const live = h("ul", { class: "space-list", id: "live-spaces", "aria-busy": "true" });
  const scheduled = h("ul", { class: "space-list", id: "scheduled-spaces", "aria-busy": "true" });
  const replays = h("ul", { class: "space-list", id: "recent-replays", "aria-busy": "true" });
  const status = h("p", { class: "notice", role: "status", hidden: true });
  const controller = new AbortController();
  const following = h("ul", { class: "space-list", id: "following-live" });
  const followingSection = h("section", { "aria-labelledby": "following-heading", id: "following-section", hidden: true },
    h("h2", { id: "following-heading" }, "Following: live now"), following);
  main.append(
    h("section", { class: "hero" },
      h("h1", {}, "Live audio spaces"),
      h("p", {}, "Listen in, react, raise your hand and speak."),
      session
        ? h("a", { class: "button button-primary", href: "/new", "data-link": true }, "Start a space")
        : h("p", {}, h("a", { href: "/signin?mode=signup&next=/new", "data-link": true }, "Create an account"), " to host or speak; listening needs none.")),
    searchSection(controller.signal),
    status,
    followingSection,
    h("section", { "aria-labelledby": "live-heading" }, h("h2", { id: "live-heading" }, "Live now"), live),
    h("section", { "aria-labelledby": "scheduled-heading" }, h("h2", { id: "scheduled-heading" }, "Scheduled"), scheduled),
    h("section", { "aria-labelledby": "replays-heading" }, h("h2", { id: "replays-heading" }, "Recent replays"), replays),
  );

  let timer = 0;
  let stopped = false;

  async function load() {
    let delay = REFRESH_MS;
    try {
      const [a, b, r, mine] = await Promise.all([
        get(paths.spaces("live"), { signal: controller.signal }),
        get(paths.spaces("scheduled"), { signal: controller.signal }),
        get(paths.replays, { signal: controller.signal }),
        session ? followingLive(controller.signal).catch(() => null) : Promise.resolve([]),
      ]);
      if (mine) {
        fill(following, mine.map((sp) => liveCard(sp, null)));
        followingSection.hidden = mine.length === 0;
      }
      status.hidden = true;
      const liveSpaces = a.data.spaces;
      // Who is speaking is in each space's state (public and cacheable, like a listener's).
      const peeks = await Promise.allSettled(
        liveSpaces.slice(0, STATE_PEEKS).map((sp) => get(paths.state(sp.id), { signal: controller.signal })),
      );
      const states = peeks.map((p) => (p.status === "fulfilled" ? p.value.data : null));
      fill(live, liveSpaces.length
        ? liveSpaces.map((sp, i) => liveCard(sp, states[i]))
        : h("li", { class: "empty" }, "Nothing live right now."));
      const soon = b.data.spaces;
      fill(scheduled, soon.length ? soon.map(scheduledCard) : h("li", { class: "empty" }, "Nothing scheduled."));
      const recent = r.data.spaces;
      fill(replays, recent.length ? recent.map(replayCard) : h("li", { class: "empty" }, "No replays yet."));
      replays.removeAttribute("aria-busy");
      live.removeAttribute("aria-busy");
      scheduled.removeAttribute("aria-busy");
    } catch (err) {
      if (err.name === "AbortError") return;
      status.textContent = describeError(err);
      status.hidden = false;
      if (err.retryAfterS != null) delay = retryAfterMs(err.retryAfterS);
    }
    if (!stopped) timer = setTimeout(load, delay);
  }
  load();

  return () => {
    stopped = true;
    clearTimeout(timer);
    controller.abort();
  };
}
