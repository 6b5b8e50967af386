// A profile: display name, bio, follower counts, follow/unfollow, and the account's
// live, scheduled and past spaces (public ones; all of them on your own profile).

import { ApiError, del, get, paths, post } from "../api.js";
import { currentSession } from "../session.js";
import { describeError, fill, formatWhen, h, hue, initials, plural, toast } from "../ui.js";

const SECTIONS = [
  ["live", "Live now", "Nothing live right now."],
  ["scheduled", "Scheduled", "Nothing scheduled."],
  ["ended", "Past spaces", "No past spaces yet."],
];

function spaceItem(space, state) {
  const when = state === "live" ? plural(space.listeners, "listener") : state === "scheduled" ? formatWhen(space.scheduled_start) : formatWhen(space.ended_at);
  const hidden = space.visibility !== "public" ? h("span", { class: "badge" }, space.visibility) : null;
  return h("li", { class: "space-card" },
    h("a", { class: "space-link", href: `/s/${space.id}`, "data-link": true },
      h("span", { class: `badge ${state === "live" ? "badge-live" : ""}` }, state === "live" ? "Live" : state === "scheduled" ? "Scheduled" : "Ended"),
      h("span", { class: "space-title" }, space.title)),
    h("p", { class: "space-meta" },
      state === "live" ? h("span", { class: "count" }, when)
        : when ? h("time", { datetime: space.scheduled_start || space.ended_at || "" }, when) : null,
      hidden,
      state === "ended" && space.record && !space.recording_deleted
        ? h("a", { href: `/replay/${space.id}`, "data-link": true, class: "replay-link" }, "Listen to the replay")
        : null));
}

export function mount(main, { params }) {
  const handle = params[0].toLowerCase();
  document.title = `@${handle} · Pnyx`;
  const session = currentSession();
  const token = session?.token;
  const mine = session?.handle === handle;
  const controller = new AbortController();

  const status = h("p", { class: "notice", role: "status", hidden: true });
  const name = h("h1", { id: "profile-name" }, `@${handle}`);
  const handleLine = h("p", { class: "profile-handle" }, `@${handle}`);
  const bio = h("p", { class: "profile-bio", id: "profile-bio" });
  const followers = h("span", { id: "profile-followers" });
  const following = h("span", { id: "profile-following" });
  const follow = h("button", { class: "button button-primary", type: "button", id: "follow-button", hidden: true });
  const edit = mine ? h("a", { class: "button", href: "/settings", "data-link": true, id: "edit-profile" }, "Edit profile") : null;
  const signInToFollow = !session
    ? h("a", { href: `/signin?next=/u/${handle}`, "data-link": true }, "Sign in to follow")
    : null;
  const lists = Object.fromEntries(SECTIONS.map(([state]) => [state, h("ul", { class: "space-list", id: `profile-${state}`, "aria-busy": "true" })]));
  const avatar = h("span", { class: "avatar avatar-large", style: { "--hue": hue(handle) }, "aria-hidden": "true" }, initials(handle));

  main.append(
    h("section", { class: "profile-header card" },
      avatar,
      h("div", { class: "profile-text" }, name, handleLine, bio,
        h("p", { class: "profile-counts" }, followers, " · ", following),
        h("p", { class: "actions" }, follow, edit, signInToFollow))),
    status,
    ...SECTIONS.map(([state, title]) => h("section", { "aria-labelledby": `profile-${state}-heading` },
      h("h2", { id: `profile-${state}-heading` }, title), lists[state])),
  );

  let profile = null;
  function renderProfile() {
    const named = profile.display_name && profile.display_name !== profile.handle;
    name.textContent = named ? profile.display_name : `@${profile.handle}`;
    avatar.textContent = initials(named ? profile.display_name.replace(/(\S)\S*\s*/g, "$1") : profile.handle);
    handleLine.hidden = !named;
    bio.textContent = profile.bio || "";
    bio.hidden = !profile.bio;
    followers.textContent = plural(profile.followers, "follower");
    following.textContent = `${profile.following} following`;
    document.title = `${named ? `${profile.display_name} (@${profile.handle})` : `@${profile.handle}`} · Pnyx`;
    follow.hidden = !session || mine;
    follow.textContent = profile.you_follow ? "Following" : "Follow";
    follow.setAttribute("aria-pressed", profile.you_follow ? "true" : "false");
    follow.className = `button ${profile.you_follow ? "" : "button-primary"}`;
  }

  follow.addEventListener("click", async () => {
    follow.disabled = true;
    const was = profile.you_follow;
    try {
      await (was ? del : post)(paths.follow(handle), { token });
      const res = await get(paths.profile(handle), { token, signal: controller.signal });
      profile = res.data;
      renderProfile();
      toast(was ? `You no longer follow @${handle}.` : `You follow @${handle}: you'll hear when they go live.`);
    } catch (err) {
      if (err.name !== "AbortError") toast(describeError(err), { tone: "error" });
    } finally {
      follow.disabled = false;
    }
  });

  async function load() {
    try {
      profile = (await get(paths.profile(handle), { token, signal: controller.signal })).data;
      renderProfile();
    } catch (err) {
      if (err.name === "AbortError") return;
      if (err instanceof ApiError && err.status === 404) {
        document.title = "No such account · Pnyx";
        fill(main, h("h1", {}, "No such account"),
          h("p", {}, `There is no account @${handle}. `, h("a", { href: "/", "data-link": true }, "Back to the spaces")));
        return;
      }
      status.textContent = describeError(err);
      status.hidden = false;
      return;
    }
    await Promise.all(SECTIONS.map(async ([state, , empty]) => {
      try {
        const res = await get(paths.hosted(handle, state), { token, signal: controller.signal });
        const spaces = res.data.spaces;
        fill(lists[state], spaces.length ? spaces.map((sp) => spaceItem(sp, state)) : h("li", { class: "empty" }, empty));
      } catch (err) {
        if (err.name !== "AbortError") fill(lists[state], h("li", { class: "empty" }, describeError(err)));
      }
      lists[state].removeAttribute("aria-busy");
    }));
  }
  load();
  return () => controller.abort();
}
