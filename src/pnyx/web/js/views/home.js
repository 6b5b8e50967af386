// Home: the spaces that are live now (title, host, how many listen, who is on stage)
// and the scheduled ones.

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
      h("span", {}, "Hosted by ", h("strong", {}, `@${space.host}`)),
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
      h("span", {}, "Hosted by ", h("strong", {}, `@${space.host}`)),
      h("time", { datetime: space.scheduled_start || "" }, formatWhen(space.scheduled_start))),
  );
}

export function mount(main) {
  document.title = "Pnyx: live audio spaces";
  const session = currentSession();
  const live = h("ul", { class: "space-list", id: "live-spaces", "aria-busy": "true" });
  const scheduled = h("ul", { class: "space-list", id: "scheduled-spaces", "aria-busy": "true" });
  const status = h("p", { class: "notice", role: "status", hidden: true });
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
    status,
    followingSection,
    h("section", { "aria-labelledby": "live-heading" }, h("h2", { id: "live-heading" }, "Live now"), live),
    h("section", { "aria-labelledby": "scheduled-heading" }, h("h2", { id: "scheduled-heading" }, "Scheduled"), scheduled),
  );

  let timer = 0;
  let stopped = false;
  const controller = new AbortController();

  async function load() {
    let delay = REFRESH_MS;
    try {
      const [a, b, mine] = await Promise.all([
        get(paths.spaces("live"), { signal: controller.signal }),
        get(paths.spaces("scheduled"), { signal: controller.signal }),
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
