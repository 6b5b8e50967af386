// The space page's DOM: built once, then updated in place from each state (keyed lists
// keep elements, and the keyboard focus inside them, across updates).

import { EMOJI, h, hue, initials, ROLE_LABEL, setText, show, syncList } from "../ui.js";
import { lengthSelect } from "./clip_length.js";

/** Build the page skeleton; returns the elements the controller updates. `captions`:
 * the live captions' element (js/captions.js), placed under the player. */
export function buildSpacePage(spaceId, captions) {
  const el = {};
  const shareUrl = new URL(`/s/${spaceId}`, location.origin).href;

  el.badge = h("span", { class: "badge", id: "space-badge" }, "…");
  el.visibility = h("span", { class: "badge badge-visibility", id: "visibility-badge", hidden: true });
  el.count = h("span", { class: "count", id: "listener-count" });
  el.title = h("h1", { id: "space-title" }, "Loading…");
  el.host = h("p", { class: "space-host" });
  el.conn = h("p", { class: "conn", id: "connection-status", role: "status", hidden: true });
  el.shareInput = h("input", { id: "share-link", readonly: true, value: shareUrl, "aria-label": "Share link" });
  el.shareButton = h("button", { class: "button button-quiet", type: "button", id: "share-button" }, "Copy link");
  el.banner = h("div", { class: "banner", id: "space-banner", role: "status", hidden: true });
  el.pinned = h("p", { class: "pinned", id: "pinned-link", hidden: true });
  el.hostAway = h("p", { class: "notice", id: "host-away", hidden: true },
    "The host is away for a moment; the space goes on.");

  // Listening (the audience).
  el.listenAudio = h("audio", { id: "listen-audio", preload: "none" });
  el.play = h("button", { class: "button button-primary button-big", type: "button", id: "play-button", "aria-label": "Play the space" }, "Play");
  el.listenMeter = h("span", { class: "meter", "aria-hidden": "true" }, h("span", { class: "meter-bar" }));
  el.cc = h("button", {
    class: "button cc-button", type: "button", id: "cc-button", "aria-pressed": "false",
    "aria-label": "CC: live captions", title: "Live captions", hidden: true,
  }, "CC");
  el.frontRow = h("button", {
    class: "button frontrow-button", type: "button", id: "frontrow-button", "aria-pressed": "false",
    "aria-label": "Front row: the lowest delay", title: "Front row: hear it about a quarter of a second after it is said", hidden: true,
  }, "Front row");
  el.listenStatus = h("p", { class: "player-status", id: "player-status", role: "status" });
  el.listenNotice = h("p", { class: "notice", id: "listener-notice", hidden: true });
  // The clip's length: the node's default, or the listener's choice (views/clip_length.js).
  el.clip = h("button", { class: "button", type: "button", id: "clip-button", title: "Keep the last seconds as a clip with its own page" }, "✂ Clip the last 30 s");
  el.clipLength = lengthSelect("clip-length");
  el.clipRow = h("div", { class: "inline-form clip-row", id: "clip-row", hidden: true },
    el.clip, h("label", { for: "clip-length" }, "Length"), el.clipLength);
  el.clipNote = h("p", { class: "hint", id: "clip-note", role: "status" });
  el.listenPanel = h("section", { class: "panel listen-panel", id: "listen-panel", "aria-labelledby": "listen-heading", hidden: true },
    h("h2", { id: "listen-heading" }, "Listen"),
    h("div", { class: "row" }, el.play, el.listenMeter, el.cc, el.frontRow),
    captions, el.listenStatus, el.listenNotice, el.clipRow, el.clipNote, el.listenAudio);

  // Speaking (on stage).
  el.mixAudio = h("audio", { id: "mix-audio", autoplay: true });
  el.mic = h("button", { class: "button button-primary button-big", type: "button", id: "mic-button" }, "Mute microphone");
  el.micMeter = h("span", { class: "meter", "aria-hidden": "true" }, h("span", { class: "meter-bar" }));
  el.micStatus = h("p", { class: "player-status", id: "mic-status", role: "status" });
  el.leaveStage = h("button", { class: "button button-quiet", type: "button", id: "leave-stage" }, "Leave the stage");
  el.soundOn = h("button", { class: "button", type: "button", id: "sound-on", hidden: true }, "Turn on sound to hear the stage");
  el.processing = h("input", { type: "checkbox", id: "voice-processing", "aria-describedby": "voice-processing-hint" });
  el.micPanel = h("section", { class: "panel mic-panel", id: "mic-panel", "aria-labelledby": "mic-heading", hidden: true },
    h("h2", { id: "mic-heading" }, "You're on stage"),
    h("div", { class: "row" }, el.mic, el.micMeter),
    el.micStatus, el.soundOn,
    h("details", { class: "mic-settings" },
      h("summary", {}, "Microphone settings"),
      h("div", { class: "choice" }, el.processing,
        h("label", { for: "voice-processing" }, "Echo cancellation and noise suppression")),
      h("p", { class: "hint", id: "voice-processing-hint" }, "Leave on unless you wear headphones or play music.")),
    el.leaveStage, el.mixAudio);

  // An invitation to speak.
  el.inviteText = h("p", { id: "invitation-text" });
  el.acceptInvite = h("button", { class: "button button-primary", type: "button", id: "accept-invitation" }, "Accept");
  el.declineInvite = h("button", { class: "button button-quiet", type: "button", id: "decline-invitation" }, "Decline");
  el.invitePanel = h("section", { class: "panel invite-panel", id: "invitation-panel", role: "region", "aria-labelledby": "invite-heading", hidden: true },
    h("h2", { id: "invite-heading" }, "You're invited to speak"),
    el.inviteText, h("div", { class: "row" }, el.acceptInvite, el.declineInvite));

  // The stage.
  el.stage = h("ul", { class: "stage", id: "stage-list", "aria-label": "On stage" });
  el.stagePanel = h("section", { class: "panel stage-panel", "aria-labelledby": "stage-heading" },
    h("h2", { id: "stage-heading" }, "On stage"), el.stage);

  // Asking to speak (the audience).
  el.hand = h("button", { class: "button", type: "button", id: "hand-button" }, "Raise hand");
  el.handNote = h("p", { class: "hint", id: "hand-note" });
  el.handsCount = h("p", { class: "hint", id: "hands-count" });
  el.handPanel = h("section", { class: "panel hand-panel", id: "hand-panel", "aria-labelledby": "hand-heading", hidden: true },
    h("h2", { id: "hand-heading" }, "Ask to speak"), el.hand, el.handNote, el.handsCount);

  // Requests and invitations (host, co-hosts).
  el.requests = h("ul", { class: "requests", id: "hand-queue", "aria-label": "Raised hands" });
  el.requestsEmpty = h("p", { class: "hint", id: "hand-queue-empty" }, "No raised hands.");
  el.requestsHeading = h("h2", { id: "requests-heading" }, "Requests to speak");
  el.inviteHandle = h("input", { id: "invite-handle", autocomplete: "off", autocapitalize: "none", spellcheck: "false", placeholder: "handle", required: true });
  el.inviteRole = h("select", { id: "invite-role", "aria-label": "Invite as" },
    h("option", { value: "speaker" }, "Speaker"), h("option", { value: "cohost" }, "Co-host"));
  el.inviteForm = h("form", { class: "inline-form", id: "invite-form", "aria-label": "Invite someone to the stage" },
    h("label", { for: "invite-handle" }, "Invite @"), el.inviteHandle, el.inviteRole,
    h("button", { class: "button", type: "submit" }, "Invite"));
  el.pending = h("ul", { class: "pending", id: "pending-invitations", "aria-label": "Pending invitations" });
  el.requestsPanel = h("section", { class: "panel requests-panel", id: "requests-panel", "aria-labelledby": "requests-heading", hidden: true },
    el.requestsHeading, el.requests, el.requestsEmpty, el.inviteForm, el.pending);

  // Reactions.
  el.reactionButtons = h("div", { class: "reaction-buttons", id: "reaction-buttons", role: "group", "aria-label": "Send a reaction" },
    EMOJI.map(([emoji, name]) => h("button", { class: "reaction", type: "button", dataset: { emoji }, "aria-label": `React ${name}`, title: name }, emoji)));
  el.reactionCounts = h("ul", { class: "reaction-counts", id: "reaction-counts", "aria-label": "Reactions in the last few seconds" });
  el.reactionsHint = h("p", { class: "hint", id: "reactions-hint" }, "Reactions from the audience show here as they arrive.");
  el.floats = h("div", { class: "floats", "aria-hidden": "true" });
  el.reactionsPanel = h("section", { class: "panel reactions-panel", id: "reactions-panel", "aria-labelledby": "reactions-heading" },
    h("h2", { id: "reactions-heading" }, "Reactions"), el.reactionButtons, el.reactionsHint, el.reactionCounts, el.floats);

  // Who may listen to a private space (host, co-hosts).
  el.audienceHandle = h("input", { id: "audience-handle", autocomplete: "off", autocapitalize: "none", spellcheck: "false", placeholder: "handle", required: true });
  el.audienceForm = h("form", { class: "inline-form", id: "audience-form", "aria-label": "Invite someone to listen" },
    h("label", { for: "audience-handle" }, "Add a listener @"), el.audienceHandle,
    h("button", { class: "button", type: "submit" }, "Invite"));
  el.audienceHint = h("p", { class: "hint", id: "audience-hint" });
  el.audienceList = h("ul", { class: "invites", id: "audience-list", "aria-label": "Invited listeners" });
  el.audiencePanel = h("section", { class: "panel audience-panel", id: "audience-panel", "aria-labelledby": "audience-heading", hidden: true },
    h("h2", { id: "audience-heading" }, "Who can listen"), el.audienceHint, el.audienceForm, el.audienceList);

  // Running the space (host, co-hosts).
  el.pinInput = h("input", { id: "pin-url", type: "url", placeholder: "https://…", autocomplete: "off" });
  el.pinForm = h("form", { class: "inline-form", id: "pin-form" },
    h("label", { for: "pin-url" }, "Pin a link"), el.pinInput,
    h("button", { class: "button", type: "submit" }, "Pin"));
  el.unpin = h("button", { class: "button button-quiet", type: "button", id: "unpin", hidden: true }, "Unpin");
  el.policy = h("select", { id: "speak-policy" },
    h("option", { value: "everyone" }, "Anyone listening"),
    h("option", { value: "followed" }, "Only people the host follows"),
    h("option", { value: "nobody" }, "Nobody: invite only"));
  el.startSpace = h("button", { class: "button button-primary", type: "button", id: "start-space", hidden: true }, "Start the space now");
  el.end = h("button", { class: "button button-danger", type: "button", id: "end-space" }, "End space");
  el.endReason = h("input", { id: "end-reason", autocomplete: "off", maxlength: "500", placeholder: "Reason (optional, told to followers)" });
  el.endConfirm = h("div", { class: "confirm", id: "end-confirm", role: "group", "aria-label": "Confirm ending the space", hidden: true },
    h("p", { id: "end-question" }, "End this space for everyone?"),
    el.endReason,
    h("button", { class: "button button-danger", type: "button", id: "end-confirm-yes" }, "Yes, end the space"),
    h("button", { class: "button button-quiet", type: "button", id: "end-confirm-no" }, "Cancel"));
  // A scheduled space: its host edits or reschedules it; anyone signed in asks for a reminder.
  el.editTitle = h("input", { id: "edit-title", autocomplete: "off", required: true });
  el.editStart = h("input", { id: "edit-start", type: "datetime-local", required: true });
  el.editForm = h("form", { class: "schedule-form", id: "edit-form", "aria-label": "Edit or reschedule", hidden: true },
    h("label", { for: "edit-title" }, "Title"), el.editTitle,
    h("label", { for: "edit-start" }, "Starts"), el.editStart,
    h("button", { class: "button", type: "submit", id: "edit-save" }, "Save changes"));
  el.remind = h("button", { class: "button", type: "button", id: "remind-me", "aria-pressed": "false" }, "🔔 Remind me");
  el.remindHint = h("p", { class: "hint", id: "remind-hint" });
  el.remindPanel = h("section", { class: "panel remind-panel", id: "remind-panel", "aria-labelledby": "remind-heading", hidden: true },
    h("h2", { id: "remind-heading" }, "Starting later"), el.remind, el.remindHint);
  el.hostPanel = h("section", { class: "panel host-panel", id: "host-panel", "aria-labelledby": "host-heading", hidden: true },
    h("h2", { id: "host-heading" }, "Run the space"),
    el.startSpace, el.editForm, el.pinForm, el.unpin,
    h("div", { class: "field" }, h("label", { for: "speak-policy" }, "Who may ask to speak"), el.policy),
    el.end, el.endConfirm);

  el.root = h("article", { class: "space", "aria-labelledby": "space-title" },
    h("header", { class: "space-header" },
      h("p", { class: "space-status" }, el.badge, el.visibility, el.count),
      el.title, el.host,
      h("div", { class: "share" }, el.shareInput, el.shareButton),
      el.conn),
    el.banner, el.hostAway, el.pinned,
    h("div", { class: "space-grid" },
      el.mainCol = h("div", { class: "col-main" }, el.invitePanel, el.listenPanel, el.micPanel, el.stagePanel, el.reactionsPanel),
      el.sideCol = h("div", { class: "col-side" }, el.remindPanel, el.handPanel, el.requestsPanel, el.audiencePanel, el.hostPanel)),
  );
  return el;
}

/** The stage list: who is on it, their role, muted, speaking; actions for moderators. */
export function renderStage(el, members, ctx) {
  syncList(el.stage, members, (m) => m.handle, (m) => {
    const li = h("li", { class: "member" },
      h("span", { class: "avatar", style: { "--hue": hue(m.handle) }, "aria-hidden": "true" }, initials(m.handle)),
      h("span", { class: "member-text" },
        h("span", { class: "member-name" }),
        h("span", { class: "member-role" })),
      h("span", { class: "member-state" }),
      h("span", { class: "member-actions-slot" }));
    return li;
  }, (li, m) => {
    li.classList.toggle("is-speaking", Boolean(m.speaking && !m.muted));
    li.classList.toggle("is-muted", Boolean(m.muted));
    li.classList.toggle("is-me", m.handle === ctx.me);
    // The display name, with the handle beside the role (the handle alone if they match).
    const named = m.display_name && m.display_name !== m.handle;
    setText(li.querySelector(".member-name"), named ? m.display_name : `@${m.handle}`);
    const role = [ROLE_LABEL[m.role] || m.role, named ? `@${m.handle}` : null, m.handle === ctx.me ? "you" : null];
    setText(li.querySelector(".member-role"), role.filter(Boolean).join(" · "));
    const state = m.muted ? "Muted" : m.speaking ? "Speaking" : "";
    const stateEl = li.querySelector(".member-state");
    setText(stateEl, state);
    stateEl.className = `member-state ${m.muted ? "state-muted" : m.speaking ? "state-speaking" : ""}`;
    const slot = li.querySelector(".member-actions-slot");
    const actions = ctx.actionsFor(m);
    const sig = actions.map((a) => a.id).join(",");
    if (slot.dataset.sig !== sig) {
      // The actions changed (a new role, a mute): rebuild the menu, keeping it open and
      // the focus in it if it was.
      const old = slot.querySelector("details");
      const wasOpen = old?.open;
      const hadFocus = old?.contains(document.activeElement);
      slot.dataset.sig = sig;
      slot.replaceChildren(actions.length ? memberMenu(m, actions) : "");
      const menu = slot.querySelector("details");
      if (menu && wasOpen) menu.open = true;
      if (menu && hadFocus) menu.querySelector("summary").focus();
    }
  });
}

function memberMenu(member, actions) {
  return h("details", { class: "member-actions" },
    h("summary", { "aria-label": `Actions for @${member.handle}`, title: `Actions for @${member.handle}` }, "⋯"),
    h("div", { class: "menu" },
      actions.map((a) => h("button", {
        class: `button ${a.danger ? "button-danger" : "button-quiet"}`, type: "button",
        dataset: { action: a.id, handle: member.handle },
      }, a.label))));
}

/** Raised hands, oldest first, with approve and decline. */
export function renderRequests(el, handles) {
  syncList(el.requests, handles, (x) => x, (handle) => h("li", { class: "request" },
    h("span", { class: "avatar avatar-small", style: { "--hue": hue(handle) }, "aria-hidden": "true" }, initials(handle)),
    h("span", { class: "member-name" }, `@${handle}`),
    h("button", { class: "button button-primary", type: "button", dataset: { action: "approve", handle }, "aria-label": `Approve @${handle}` }, "Approve"),
    h("button", { class: "button button-quiet", type: "button", dataset: { action: "decline", handle }, "aria-label": `Decline @${handle}` }, "Decline")),
  () => {});
  show(el.requestsEmpty, handles.length === 0);
  setText(el.requestsHeading, handles.length ? `Requests to speak (${handles.length})` : "Requests to speak");
}

export function renderPending(el, invited) {
  syncList(el.pending, invited, (i) => i.handle, (i) => h("li", {}, ""), (li, i) => {
    setText(li, `Invited @${i.handle} as ${(ROLE_LABEL[i.role] || i.role).toLowerCase()}: waiting for an answer`);
  });
}

/** Reactions over the last few seconds as counts, and floating emoji for new ones. */
export function renderReactions(el, reactions, previous, reducedMotion) {
  const items = EMOJI.filter(([e]) => reactions[e] > 0).map(([e, name]) => ({ e, name, n: reactions[e] }));
  syncList(el.reactionCounts, items, (x) => x.e, () => h("li", { class: "reaction-count" }), (li, x) => {
    setText(li, `${x.e} ${x.n}`);
    li.setAttribute("aria-label", `${x.name}: ${x.n}`);
  });
  if (reducedMotion) return;
  for (const { e, n } of items) {
    const fresh = Math.min(5, n - (previous[e] || 0));
    for (let i = 0; i < fresh; i++) floatEmoji(el, e, i * 120);
  }
}

export function floatEmoji(el, emoji, delayMs = 0) {
  const span = h("span", { class: "float", style: { left: `${10 + Math.random() * 80}%`, "animation-delay": `${delayMs}ms` } }, emoji);
  el.floats.append(span);
  span.addEventListener("animationend", () => span.remove());
  setTimeout(() => span.remove(), 4000 + delayMs);
}

/** The invited listeners of a private space, each with a button to revoke. */
export function renderAudience(el, invites) {
  syncList(el.audienceList, invites, (i) => i.handle, (i) => h("li", { class: "invite" },
    h("span", { class: "member-name" }, `@${i.handle}`),
    h("button", { class: "button button-quiet", type: "button", dataset: { action: "revoke", handle: i.handle }, "aria-label": `Remove @${i.handle}'s invitation` }, "Remove")), () => {});
}
