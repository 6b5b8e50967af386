// A space: one page for everyone, in the mode the state gives them.
//   audience   press play to hear the space (LL-HLS), react, raise a hand, accept an
//              invitation; counted by heartbeats
//   stage      host, co-host or speaker: the microphone over WebRTC and the mix-minus
//              back; hosts and co-hosts also run the space (hands, invitations,
//              mutes, removals, the pin, the speak policy, the end)
// The page switches between the two as the state changes, without reloading.

import { ApiError, call, del, get, isPrivateId, paths, post, put } from "../api.js";
import { audioContext, runMeter, tones } from "../audio.js";
import { Captions, captionsWanted, rememberCaptions } from "../captions.js";
import { ListenerSession } from "../listener.js";
import { Player } from "../player.js";
import { Publisher, voiceProcessing } from "../publisher.js";
import { retryAfterMs } from "../retry.js";
import { currentSession, setSession } from "../session.js";
import { StageSocket } from "../stage_socket.js";
import { StatePoller } from "../state.js";
import { alertNow, describeError, formatWhen, h, plural, setText, show, toast } from "../ui.js";
import { AnalyticsPanel, ListenersPanel } from "./audience_panels.js";
import { fillLengths } from "./clip_length.js";
import {
  buildSpacePage, floatEmoji, renderAudience, renderPending, renderReactions, renderRequests, renderStage,
} from "./space_dom.js";

const MODERATORS = new Set(["host", "cohost"]);

/** An ISO time as a datetime-local input's value, in the browser's zone. */
function localInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
const OVER = new Set(["ended", "cancelled"]);
const VISIBILITY_LABEL = { unlisted: "Unlisted", private: "Private" };
const LINKS_EARLY_MS = 5 * 60 * 1000; // signed links are renewed this long before they expire

const PLAYER_TEXT = {
  idle: "",
  loading: "Connecting to the audio…",
  playing: "Playing live.",
  buffering: "Buffering…",
  reconnecting: "Connection lost: reconnecting by itself…",
  ended: "The audio has ended.",
  blocked: "Press play to listen.",
};

const MIC_TEXT = {
  starting: "Starting your microphone…",
  connecting: "Connecting your microphone…",
  live: "You're live: the others hear you, and you hear them.",
  reconnecting: "Connection lost: reconnecting your microphone…",
  stopped: "",
};

class SpacePage {
  constructor(main, spaceId, navigate) {
    this.spaceId = spaceId;
    this.navigate = navigate;
    this.session = currentSession();
    this.me = this.session?.handle || null;
    this.names = new Map(); // handle → display name, of everyone seen on stage (captions)
    this.captions = new Captions({ nameOf: (handle) => this.names.get(handle) || null });
    this.el = buildSpacePage(spaceId, this.captions.el);
    main.append(this.el.root);
    // The audience as its host sees it: who listens (host and co-hosts, live), how it went (host).
    this.listeners = new ListenersPanel(spaceId, () => this.session?.token);
    this.analytics = new AnalyticsPanel(spaceId, () => this.session?.token);
    this.analyticsLoaded = false;
    this.el.sideCol.append(this.listeners.el);
    this.el.mainCol.append(this.analytics.el);
    this.info = null; // GET /v1/spaces/{id}
    this.links = null; // a private space's signed links (GET …/links, POST …/join)
    this.linksTimer = null;
    this.invitesLoaded = false;
    this.state = null; // the latest state
    this.mode = null; // "audience" | "stage" | "over" | "scheduled"
    this.role = "listener";
    this.wantListening = false; // the person pressed play (resume after the stage)
    this.handRaised = sessionStorage.getItem(this.handKey) === "1";
    this.pendingMute = null;
    this.prevReactions = {};
    this.removedReason = null;
    this.reducedMotion = matchMedia("(prefers-reduced-motion: reduce)").matches;
    this.stopMeters = [];

    this.player = new Player(this.el.listenAudio, {
      onStatus: (s, d) => this.onPlayerStatus(s, d),
      onCues: (cues) => this.captions.add(cues, this.el.listenAudio.currentTime),
    });
    this.onPlayhead = () => this.captions.render(this.el.listenAudio.currentTime);
    this.el.listenAudio.addEventListener("timeupdate", this.onPlayhead);
    this.publisher = new Publisher(spaceId, {
      token: () => this.session?.token,
      output: this.el.mixAudio,
      onStatus: (s, d) => this.onMicStatus(s, d),
      onFatal: (err) => this.onActionError(err),
      onAudioBlocked: () => show(this.el.soundOn, true),
    });
    this.listener = new ListenerSession(spaceId, {
      accountToken: () => this.session?.token || null,
      onStatus: (s, err, delay) => this.onListenerStatus(s, err, delay),
      onMedia: (media) => { if (this.links) this.links = { ...this.links, ...media }; },
      onFrontRow: (offer) => {
        this.frontRowOffer = offer;
        this.applyFrontRow();
      },
    });
    this.socket = new StageSocket(spaceId, {
      token: () => this.session?.token,
      onEvent: () => this.poller.refresh(),
      onGoingAway: () => this.publisher.restart(),
    });
    this.poller = new StatePoller(spaceId, {
      token: () => (this.session && (this.state == null || this.role !== "listener") ? this.session.token : null),
      link: () => this.links?.state || null,
      onState: (s) => this.onState(s),
      onError: (err, delay) => this.onStateError(err, delay),
      onRecovered: () => show(this.el.conn, false),
    });

    this.bind();
    this.exposeDiagnostics();
    this.stopMeters.push(
      runMeter(() => this.player.analyser, this.el.listenMeter, () => this.player.playing),
      runMeter(() => this.publisher.micAnalyser, this.el.micMeter, () => this.publisher.running),
    );
  }

  get handKey() {
    return `pnyx.hand.${this.spaceId}`;
  }

  async open() {
    if (isPrivateId(this.spaceId) && !(await this.loadLinks())) return;
    try {
      this.info = (await get(this.links?.self || paths.space(this.spaceId))).data;
    } catch (err) {
      setText(this.el.title, err.status === 404 ? "There is no such space" : "This space can't be loaded");
      document.title = "Space not found · Pnyx";
      this.banner(err.status === 404 ? "Check the link: no space has this address." : describeError(err), "error");
      this.el.root.querySelector(".space-grid").hidden = true;
      return;
    }
    document.title = `${this.info.title} · Pnyx`;
    setText(this.el.title, this.info.title);
    fillLengths(this.el.clipLength, this.info);
    this.clipLabel();
    this.setCaptions(this.info.captions ? captionsWanted() : false);
    setText(this.el.visibility, VISIBILITY_LABEL[this.info.visibility] || "");
    show(this.el.visibility, Boolean(VISIBILITY_LABEL[this.info.visibility]));
    this.poller.start();
  }

  /** The clip button says how long its clip is (the length chosen). */
  clipLabel() {
    const seconds = this.el.clipLength.value;
    setText(this.el.clip, `✂ Clip the last ${seconds} s`);
    this.el.clip.title = `Keep the last ${seconds} seconds as a clip with its own page`;
  }

  /** A private space is read through signed links, handed only to its audience. */
  async loadLinks() {
    const signIn = () => h("a", { href: `/signin?next=/s/${this.spaceId}`, "data-link": true }, "Sign in");
    if (!this.session) {
      this.refuse("This space is private", "Only people the host invited can listen. ", signIn(), " if you were invited.");
      return false;
    }
    try {
      const res = await get(paths.links(this.spaceId), { token: this.session.token });
      this.useLinks(res.data.links, res.data.expires_at);
      return true;
    } catch (err) {
      if (err.status === 404) {
        this.refuse("There is no such space", "Check the link: no space has this address.");
      } else if (err.status === 403) {
        this.refuse("This space is private", `Only people the host invited can listen, and @${this.me} is not invited. Ask the host for an invitation.`);
      } else if (err.status === 401) {
        setSession(null);
        this.session = null;
        this.refuse("This space is private", "Your session has expired. ", signIn(), " again if you were invited.");
      } else {
        this.refuse("This space can't be loaded", describeError(err));
      }
      return false;
    }
  }

  refuse(title, ...content) {
    setText(this.el.title, title);
    document.title = `${title} · Pnyx`;
    this.el.banner.replaceChildren(...content);
    this.el.banner.className = "banner banner-error";
    show(this.el.banner, true);
    show(this.el.badge, false);
    this.el.root.querySelector(".space-grid").hidden = true;
    this.el.root.querySelector(".share").hidden = true;
  }

  useLinks(links, expiresAt) {
    this.links = { ...(this.links || {}), ...links };
    if (links.frontrow && this.frontRowOffer && links.frontrow !== this.frontRowOffer.url) {
      // A private space's signed front-row URL is renewed with the other links (not only
      // by a join): an open push goes on, its next connection uses the new URL.
      this.frontRowOffer = { ...this.frontRowOffer, url: links.frontrow };
      this.applyFrontRow();
    }
    clearTimeout(this.linksTimer);
    if (expiresAt && !this.closed) {
      const ms = Math.max(30000, expiresAt * 1000 - Date.now() - LINKS_EARLY_MS);
      this.linksTimer = setTimeout(() => this.renewLinks(), ms);
    }
  }

  /** New signed links before the old ones expire (or after an expired one was refused). */
  async renewLinks() {
    if (this.closed || !this.session) return;
    const before = this.listenSource();
    try {
      const res = await get(paths.links(this.spaceId), { token: this.session.token });
      this.useLinks(res.data.links, res.data.expires_at);
      const src = this.listenSource();
      if (this.player.playing && src !== before) {
        // On the push path only the muted, warm LL-HLS moves to the new source
        // (restarting the player would reopen the push for nothing).
        if (this.player.path === "frontrow") this.player.setSource(src);
        else this.player.play(src, { live: true });
      }
      this.poller.refresh();
    } catch (err) {
      if (err instanceof ApiError && err.status === 403) {
        this.player.stop();
        this.poller.stop();
        this.listener.stop();
        this.refuse("This space is private", "You are no longer invited to this space.");
        return;
      }
      this.linksTimer = setTimeout(() => this.renewLinks(), 30000);
    }
  }

  close() {
    this.closed = true;
    clearTimeout(this.linksTimer);
    this.poller.stop();
    this.socket.stop();
    this.listener.stop();
    this.publisher.stop({ release: this.mode === "stage" });
    this.player.destroy();
    this.el.listenAudio.removeEventListener("timeupdate", this.onPlayhead);
    this.listeners.close();
    for (const stop of this.stopMeters) stop();
    window.removeEventListener("pagehide", this.onPageHide);
    document.removeEventListener("click", this.onDocumentClick);
    if (window.pnyx?.space === this.diagnostics) delete window.pnyx.space;
  }

  // -- state ----------------------------------------------------------------------
  onState(s) {
    const previous = this.state;
    this.state = s;
    this.player.setLatency(s.latency);
    const member = s.stage.find((m) => m.handle === this.me);
    const role = member ? member.role : "listener";
    const roleChanged = previous && role !== this.role;
    this.role = role;
    this.render(previous);
    this.reconcile(member, roleChanged, previous);
  }

  onStateError(err, delay) {
    if (this.links && (err.status === 410 || err.code === "bad_signature")) {
      this.renewLinks(); // expired (or re-keyed) signed links: get new ones
    }
    if (err.status === 404) {
      this.banner("This space no longer exists.", "error");
      return;
    }
    if (err.status === 401 && this.session) {
      this.sessionExpired();
      return;
    }
    const wait = delay ? ` Retrying in ${Math.max(1, Math.round(delay / 1000))} s.` : "";
    setText(this.el.conn, err.isRetryLater
      ? `The server is busy; updates are paused (audio keeps playing).${wait}`
      : `Lost contact with the server; reconnecting…${wait}`);
    show(this.el.conn, true);
  }

  sessionExpired() {
    setSession(null);
    this.session = null;
    this.me = null;
    alertNow("Your session has expired: sign in again to speak or moderate.");
    this.poller.refresh();
  }

  /** Start and stop audio, publishing, heartbeats and the socket to fit the state. */
  reconcile(member, roleChanged, previous) {
    const s = this.state;
    let mode;
    if (OVER.has(s.state)) mode = "over";
    else if (s.state !== "live") mode = "scheduled";
    else mode = member ? "stage" : "audience";
    const modeChanged = mode !== this.mode;
    const was = this.mode;
    this.mode = mode;

    if (mode === "stage") {
      if (modeChanged) {
        this.listener.stop();
        if (this.player.playing) this.wantListening = true;
        this.player.stop();
        this.setHand(false);
        this.publisher.start({ muted: member.muted }).catch(() => {
          alertNow("Your microphone is unavailable or not allowed: allow it in the browser to speak.");
        });
        this.socket.start();
        if (was) alertNow(member.role === "host" ? "You're live." : `You're on stage as ${member.role === "cohost" ? "a co-host" : "a speaker"}. Your microphone is on.`);
      } else if (roleChanged) {
        toast(`You're now ${member.role === "cohost" ? "a co-host" : member.role}.`);
      }
      if (this.pendingMute == null) this.publisher.setMuted(member.muted);
      if (previous && !previous.stage.find((m) => m.handle === this.me)?.muted && member.muted && this.pendingMute == null) {
        toast("You were muted by a host. Unmute when you're ready to talk.");
      }
    } else {
      if (this.publisher.running) this.publisher.stop();
      this.socket.stop();
    }

    if (mode === "audience") {
      if (modeChanged && !this.removedReason) {
        this.listener.start();
        if (was === "stage") {
          alertNow("You're back in the audience.");
          this.startListening();
        } else if (was === "scheduled" && this.wantListening) {
          this.startListening();
        }
      }
      if (this.handRaised && s.hands.count === 0) this.setHand(false);
    } else if (mode === "over") {
      this.listener.stop();
      this.setHand(false);
      if (modeChanged && was) alertNow(this.endedText());
      // The player plays out what it has and stops at the stream's end.
    }
  }

  endedText() {
    const s = this.state;
    if (s.state === "cancelled") return "This space was cancelled.";
    if (s.end_reason === "host_left") return "This space has ended: the host left.";
    return "This space has ended.";
  }

  // -- rendering --------------------------------------------------------------------
  render(previous) {
    const s = this.state;
    const el = this.el;
    const info = this.info;
    const live = s.state === "live";
    const over = OVER.has(s.state);
    const moderator = MODERATORS.has(this.role) && live;
    const isHost = this.role === "host";

    setText(el.title, s.title || info.title);
    const hostHandle = s.host || info.host;
    const hostName = s.stage.find((m) => m.handle === hostHandle)?.display_name;
    for (const m of s.stage) {
      if (m.display_name && m.display_name !== m.handle) this.names.set(m.handle, m.display_name);
    }
    if (!el.hostLink) {
      el.hostLink = h("a", { "data-link": true, id: "host-link" });
      el.host.replaceChildren("Hosted by ", el.hostLink);
    }
    el.hostLink.setAttribute("href", `/u/${hostHandle}`);
    setText(el.hostLink, hostName && hostName !== hostHandle ? `${hostName} (@${hostHandle})` : `@${hostHandle}`);
    setText(el.badge, live ? "Live" : over ? "Ended" : "Scheduled");
    el.badge.className = `badge ${live ? "badge-live" : ""}`;
    setText(el.count, live ? `${plural(s.listeners, "listener")}` : "");

    // Banner: the end, or when it starts.
    if (over) {
      el.banner.replaceChildren(
        h("strong", {}, this.endedText()),
        info.record && !info.recording_deleted && s.state === "ended"
          ? h("span", {}, " ", h("a", { href: `/replay/${this.spaceId}`, "data-link": true }, "Listen to the replay"), ".")
          : "",
        " ", h("a", { href: "/", "data-link": true }, "Find another space"), ".");
      el.banner.className = "banner banner-ended";
      show(el.banner, true);
    } else if (!live) {
      const when = info.scheduled_start ? ` It starts ${formatWhen(info.scheduled_start)}.` : "";
      this.banner(`This space is scheduled.${when} This page will start playing when it goes live.`, "info");
    } else if (this.removedReason) {
      this.banner(this.removedReason, "error");
    } else {
      show(el.banner, false);
    }
    show(el.hostAway, live && s.host_away);

    if (s.pinned) {
      el.pinned.replaceChildren("📌 ", h("a", { href: s.pinned, target: "_blank", rel: "noopener noreferrer nofollow" }, s.pinned));
    }
    show(el.pinned, Boolean(s.pinned));

    // Nobody is speaking in a space that is over, whatever the last levels said.
    const stage = over ? s.stage.map((m) => ({ ...m, speaking: false })) : s.stage;
    renderStage(el, stage, { me: this.me, actionsFor: (m) => this.actionsFor(m) });

    const inAudience = live && !this.stageMember;
    show(el.listenPanel, (inAudience || s.state === "scheduled") && !this.removedReason);
    show(el.micPanel, live && this.stageMember);
    show(el.clipRow, inAudience && !this.removedReason);
    if (over) show(el.listenPanel, this.player.playing);
    show(el.leaveStage, this.role === "speaker" || this.role === "cohost");
    this.renderMic();

    // Invitation for me.
    const invitation = this.me && live && s.invited.find((i) => i.handle === this.me);
    if (invitation) {
      setText(el.inviteText, invitation.role === "cohost"
        ? `The host invites you to join as a co-host.`
        : `You're invited to come on stage and speak.`);
    }
    show(el.invitePanel, Boolean(invitation) && !this.stageMember);

    // Hands: mine (audience) and the queue (moderators).
    show(el.handPanel, inAudience && !this.removedReason);
    this.renderHand();
    show(el.requestsPanel, moderator);
    if (moderator) {
      renderRequests(el, s.hands.handles || []);
      renderPending(el, s.invited);
      el.inviteRole.querySelector('option[value="cohost"]').disabled = !isHost;
    }

    // Reactions: everyone sees them; the audience sends them.
    show(el.reactionsPanel, live || Object.keys(s.reactions).length > 0);
    show(el.reactionButtons, inAudience && !this.removedReason);
    show(el.reactionsHint, live && !inAudience && Object.keys(s.reactions).length === 0);
    this.renderReactionButtons();
    renderReactions(el, s.reactions, previous ? this.prevReactions : s.reactions, this.reducedMotion);
    this.prevReactions = s.reactions;

    // Who may listen (a private space's host and co-hosts).
    const invites = info.visibility === "private" && MODERATORS.has(this.role) && !over;
    show(el.audiencePanel, invites);
    if (invites && !this.invitesLoaded) {
      this.invitesLoaded = true;
      setText(el.audienceHint, info.audience === "followers"
        ? "Your followers can listen, and anyone you invite."
        : "Only the people you invite can listen.");
      this.loadInvites();
    }

    // Running the space.
    show(el.hostPanel, moderator || (isHost && s.state === "scheduled"));
    show(el.startSpace, isHost && s.state === "scheduled");
    show(el.pinForm, moderator);
    show(el.unpin, moderator && Boolean(s.pinned));
    if (document.activeElement !== el.policy) el.policy.value = s.speak_policy || "everyone";
    el.policy.disabled = !moderator;
    show(el.end, isHost && !over);
    if (!isHost || over) show(el.endConfirm, false);
    const scheduled = s.state === "scheduled";
    setText(el.end, scheduled ? "Cancel space" : "End space");
    show(el.endReason, scheduled);
    setText(el.root.querySelector("#end-question"), scheduled ? "Cancel this scheduled space?" : "End this space for everyone?");
    setText(el.root.querySelector("#end-confirm-yes"), scheduled ? "Yes, cancel it" : "Yes, end the space");
    show(el.editForm, isHost && scheduled);
    if (isHost && scheduled && !this.editFilled) {
      this.editFilled = true;
      el.editTitle.value = info.title;
      el.editStart.value = localInput(info.scheduled_start);
    }
    show(el.remindPanel, scheduled && !isHost);
    if (scheduled && !isHost && this.reminded == null) this.loadReminder();

    // The audience: who is listening now; how it went, once it ended.
    this.listeners.setActive(moderator);
    const hostMe = Boolean(this.me) && (s.host || info.host) === this.me;
    if (hostMe && s.state === "ended" && !this.analyticsLoaded) {
      this.analyticsLoaded = true;
      this.loadAnalytics();
    }
  }

  /** The host's figures at the end: final once the space's node has kept them. */
  async loadAnalytics() {
    for (let i = 0; i < 10; i++) {
      const a = await this.analytics.load();
      if (!a || a.status === "ended") return;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  async loadReminder() {
    this.reminded = false;
    const el = this.el;
    if (!this.session) {
      el.remind.hidden = true;
      el.remindHint.replaceChildren(h("a", { href: `/signin?next=/s/${this.spaceId}`, "data-link": true }, "Sign in"), " to be reminded before it starts.");
      return;
    }
    try {
      this.reminded = (await get(paths.reminder(this.spaceId), { token: this.session.token })).data.reminded;
    } catch { /* shown as not reminded */ }
    this.paintReminder();
  }

  paintReminder() {
    const el = this.el;
    el.remind.setAttribute("aria-pressed", this.reminded ? "true" : "false");
    setText(el.remind, this.reminded ? "🔔 Reminder set" : "🔔 Remind me");
    setText(el.remindHint, this.reminded
      ? "You'll get a notification shortly before it starts. Press again to cancel."
      : "Get a notification shortly before it starts.");
  }

  async toggleReminder() {
    if (!this.session) return;
    const want = !this.reminded;
    this.el.remind.disabled = true;
    try {
      const res = await call(paths.reminder(this.spaceId), { method: want ? "POST" : "DELETE", token: this.session.token });
      this.reminded = res.data.reminded;
      toast(this.reminded ? "We'll remind you before it starts." : "Reminder removed.");
    } catch (err) {
      this.onActionError(err);
    } finally {
      this.el.remind.disabled = false;
      this.paintReminder();
    }
  }

  get stageMember() {
    return this.role !== "listener";
  }

  banner(text, tone) {
    this.el.banner.replaceChildren(text);
    this.el.banner.className = `banner banner-${tone}`;
    show(this.el.banner, true);
  }

  renderMic() {
    const member = this.state?.stage.find((m) => m.handle === this.me);
    if (!member) return;
    const muted = this.pendingMute ?? member.muted;
    setText(this.el.mic, muted ? "Unmute microphone" : "Mute microphone");
    this.el.mic.classList.toggle("is-muted", muted);
    this.el.mic.setAttribute("aria-describedby", "mic-status");
  }

  renderHand() {
    const el = this.el;
    const s = this.state;
    const count = s.hands.count;
    setText(el.handsCount, count ? `${plural(count, "hand")} raised.` : "");
    if (!this.me) {
      el.hand.hidden = true;
      el.handNote.replaceChildren(h("a", { href: `/signin?next=/s/${this.spaceId}`, "data-link": true }, "Sign in"), " to ask to speak.");
      return;
    }
    el.hand.hidden = false;
    const policy = s.speak_policy;
    if (policy === "nobody" && !this.handRaised) {
      el.hand.disabled = true;
      setText(el.handNote, "This space is invite only.");
    } else {
      if (!el.hand.dataset.busy) el.hand.disabled = false;
      setText(el.handNote, this.handRaised
        ? "Your hand is up. The hosts will see it."
        : policy === "followed" ? "The host takes requests from people they follow." : "");
    }
    const label = this.handRaised ? "Lower hand" : "Raise hand";
    if (el.hand.dataset.label !== label) {
      el.hand.dataset.label = label;
      el.hand.replaceChildren(h("span", { "aria-hidden": "true" }, "✋ "), label);
    }
    el.hand.setAttribute("aria-pressed", this.handRaised ? "true" : "false");
  }

  renderReactionButtons() {
    const ready = this.listener.joined && Date.now() >= this.listener.reactBlockedUntil;
    for (const b of this.el.reactionButtons.querySelectorAll("button")) b.disabled = !ready;
  }

  setHand(raised) {
    this.handRaised = raised;
    if (raised) sessionStorage.setItem(this.handKey, "1");
    else sessionStorage.removeItem(this.handKey);
    if (this.state) this.renderHand();
  }

  /** What a moderator (me) may do to member `m`, per the permission table. */
  actionsFor(m) {
    if (!MODERATORS.has(this.role) || this.state?.state !== "live" || m.handle === this.me || m.role === "host") return [];
    const isHost = this.role === "host";
    const reach = m.role === "speaker" || isHost; // co-hosts are the host's to manage
    const out = [];
    if (!m.muted) out.push({ id: "mute", label: `Mute @${m.handle}` });
    if (reach) out.push({ id: "move-back", label: "Move to the audience" });
    if (isHost && m.role === "speaker") out.push({ id: "make-cohost", label: "Make co-host" });
    if (isHost && m.role === "cohost") out.push({ id: "make-speaker", label: "Make speaker" });
    if (reach) {
      out.push({ id: "remove", label: "Remove from the space", danger: true });
      out.push({ id: "block", label: "Remove and block", danger: true });
    }
    return out;
  }

  // -- status callbacks ----------------------------------------------------------
  onPlayerStatus(status, detail) {
    setText(this.el.listenStatus, status === "error" ? detail || "Can't play the audio." : PLAYER_TEXT[status] ?? "");
    const playing = this.player.playing && status !== "blocked";
    setText(this.el.play, playing ? "Stop" : "Play");
    this.el.play.setAttribute("aria-label", playing ? "Stop listening" : "Play the space");
    this.el.play.classList.toggle("is-playing", playing);
    if (status === "ended" && this.mode === "over") {
      this.player.stop();
      show(this.el.listenPanel, false);
    }
  }

  onMicStatus(status, detail) {
    setText(this.el.micStatus, status === "error" ? detail || "Your microphone isn't working." : MIC_TEXT[status] ?? "");
  }

  onListenerStatus(status, err, delay) {
    const note = this.el.listenNotice;
    if (status === "waiting") {
      const secs = Math.max(1, Math.round((delay || 0) / 1000));
      setText(note, err?.isRetryLater
        ? `The server is busy. You can listen; reactions and hands wait. Trying again in ${secs} s.`
        : `Lost contact with the server; trying again in ${secs} s. The audio keeps playing.`);
      show(note, true);
    } else if (status === "refused") {
      if (err?.code === "removed" || err?.code === "blocked") {
        this.removedReason = describeError(err);
        this.player.stop();
        this.wantListening = false;
        alertNow(this.removedReason);
        if (this.state) this.render(this.state);
      } else if (err?.code !== "space_over") {
        setText(note, describeError(err));
        show(note, true);
      }
    } else if (status === "joined") {
      show(note, false);
    }
    if (this.state) this.renderReactionButtons();
  }

  onActionError(err) {
    if (err instanceof ApiError && err.status === 401 && this.session) {
      this.sessionExpired();
      return;
    }
    alertNow(err instanceof ApiError ? describeError(err) : String(err.message || err));
  }

  // -- actions ------------------------------------------------------------------------
  /** Run an action from `button`: busy while it runs; refused "later" keeps it off. */
  async act(button, fn, { refresh = true } = {}) {
    if (button) {
      button.disabled = true;
      button.dataset.busy = "1";
    }
    let holdMs = 0;
    try {
      await fn();
      if (refresh) this.poller.refresh();
      return true;
    } catch (err) {
      if (err instanceof ApiError && err.isRetryLater && err.retryAfterS != null) {
        holdMs = retryAfterMs(err.retryAfterS);
      }
      this.onActionError(err);
      return false;
    } finally {
      if (button) {
        const release = () => {
          delete button.dataset.busy;
          button.disabled = false;
          if (this.state) this.render(this.state);
        };
        if (holdMs) setTimeout(release, holdMs);
        else release();
      }
    }
  }

  async loadInvites() {
    try {
      const res = await get(paths.invites(this.spaceId), { token: this.session?.token });
      renderAudience(this.el, res.data.invites);
    } catch (err) {
      this.onActionError(err);
    }
  }

  /** What the audience plays: a captioned space's multivariant playlist (the audio and
   * its captions), else the audio's own playlist; signed for a private space. */
  listenSource() {
    const links = { ...(this.info?.links || {}), ...(this.links || {}) };
    if (this.info?.captions) return links.hls_main || paths.main(this.spaceId);
    return links.hls || paths.live(this.spaceId);
  }

  startListening() {
    this.wantListening = true;
    this.player.play(this.listenSource(), { live: true });
    this.onPlayerStatus(this.player.status);
  }

  /** The front row (push path): offered by the join, on by default for a small space,
   * the listener's choice otherwise; the button shows and switches it. */
  applyFrontRow() {
    const offer = this.frontRowOffer || null;
    const on = frontRowWanted(offer);
    show(this.el.frontRow, Boolean(offer));
    this.el.frontRow.setAttribute("aria-pressed", on ? "true" : "false");
    this.player.setFrontRow(on ? offer.url : null);
  }

  /** Captions on or off: the CC button, the box under the player, what the player fetches. */
  setCaptions(on) {
    const captioned = Boolean(this.info?.captions);
    show(this.el.cc, captioned);
    this.el.cc.setAttribute("aria-pressed", on ? "true" : "false");
    this.captions.setOn(captioned && on);
    this.player.setCaptions(captioned && on);
    if (on) this.captions.render(this.el.listenAudio.currentTime);
  }

  bind() {
    const el = this.el;
    const token = () => this.session?.token;
    const id = this.spaceId;

    el.soundOn.addEventListener("click", () => {
      audioContext();
      el.mixAudio.play().then(() => show(el.soundOn, false)).catch(() => {});
    });

    el.play.addEventListener("click", () => {
      if (this.player.playing && this.player.status !== "blocked") {
        this.wantListening = false;
        this.player.stop();
        this.onPlayerStatus("idle");
      } else if (this.state?.state === "scheduled") {
        this.wantListening = true;
        toast("It will start playing when the space goes live.");
      } else {
        this.startListening();
      }
    });

    el.cc.addEventListener("click", () => {
      const on = el.cc.getAttribute("aria-pressed") !== "true";
      rememberCaptions(on);
      this.setCaptions(on);
    });

    el.frontRow.addEventListener("click", () => {
      const on = el.frontRow.getAttribute("aria-pressed") !== "true";
      try { localStorage.setItem("pnyx.frontrow", on ? "on" : "off"); } catch { /* storage blocked */ }
      this.applyFrontRow();
    });

    el.shareButton.addEventListener("click", async () => {
      const url = el.shareInput.value;
      try {
        if (navigator.share && matchMedia("(pointer: coarse)").matches) {
          await navigator.share({ title: this.info?.title || "Pnyx space", url });
          return;
        }
        await navigator.clipboard.writeText(url);
        toast("Link copied.");
      } catch {
        el.shareInput.focus();
        el.shareInput.select();
        toast("Copy the selected link to share it.");
      }
    });

    el.mic.addEventListener("click", () => {
      const member = this.state?.stage.find((m) => m.handle === this.me);
      if (!member) return;
      const mute = !(this.pendingMute ?? member.muted);
      this.pendingMute = mute;
      if (mute) this.publisher.setMuted(true); // off at once; the server follows
      this.renderMic();
      this.act(el.mic, async () => {
        try {
          await post(mute ? paths.mute(id, this.me) : paths.unmute(id, this.me), { token: token() });
          this.publisher.setMuted(mute);
        } catch (err) {
          // Already in that state on the server: fine.
          if (!(err instanceof ApiError && (err.code === "already_muted" || err.code === "not_muted"))) throw err;
          this.publisher.setMuted(mute);
        } finally {
          this.pendingMute = null;
        }
      });
    });

    el.processing.checked = voiceProcessing();
    el.processing.addEventListener("change", () => {
      this.publisher.setVoiceProcessing(el.processing.checked).catch(() => {
        alertNow("Couldn't change the microphone settings.");
      });
    });

    el.leaveStage.addEventListener("click", () => this.act(el.leaveStage, () =>
      put(paths.role(id, this.me), { token: token(), json: { role: "listener" } })));

    el.clipLength.addEventListener("change", () => this.clipLabel());
    el.clip.addEventListener("click", () => {
      if (!this.session) {
        toast("Sign in to make clips.");
        return;
      }
      this.act(el.clip, async () => {
        const seconds = Number(el.clipLength.value);
        const clip = (await post(paths.clips(id), { token: token(), json: seconds ? { seconds } : {} })).data;
        el.clipNote.replaceChildren("Your clip: ",
          h("a", { href: clip.links.page, "data-link": true, id: "clip-link" }, `${clip.title} (${Math.round(clip.duration)} s)`));
        toast("Clip made.");
      }, { refresh: false });
    });

    el.hand.addEventListener("click", () => {
      const raising = !this.handRaised;
      this.act(el.hand, async () => {
        try {
          if (raising) await post(paths.hand(id), { token: token() });
          else await del(paths.hand(id), { token: token() });
        } catch (err) {
          const settled = raising ? err.code === "hand_already_raised" : err.code === "no_hand";
          if (!(err instanceof ApiError && settled)) throw err;
        }
        this.setHand(raising);
        toast(raising ? "Hand raised. The hosts can see it." : "Hand lowered.");
      });
    });

    el.acceptInvite.addEventListener("click", () => this.act(el.acceptInvite, () =>
      post(paths.invitation(id), { token: token(), json: { accept: true } })));
    el.declineInvite.addEventListener("click", () => this.act(el.declineInvite, () =>
      post(paths.invitation(id), { token: token(), json: { accept: false } })));

    el.requests.addEventListener("click", (event) => {
      const b = event.target.closest("button[data-action]");
      if (!b) return;
      const handle = b.dataset.handle;
      if (b.dataset.action === "approve") {
        this.act(b, () => put(paths.role(id, handle), { token: token(), json: { role: "speaker" } }));
      } else {
        this.act(b, () => del(paths.declineHand(id, handle), { token: token() }));
      }
    });

    el.stage.addEventListener("click", (event) => {
      const b = event.target.closest("button[data-action]");
      if (!b) return;
      const handle = b.dataset.handle;
      b.closest("details")?.removeAttribute("open");
      const run = {
        "mute": () => post(paths.mute(id, handle), { token: token() }),
        "move-back": () => put(paths.role(id, handle), { token: token(), json: { role: "listener" } }),
        "make-cohost": () => put(paths.role(id, handle), { token: token(), json: { role: "cohost" } }),
        "make-speaker": () => put(paths.role(id, handle), { token: token(), json: { role: "speaker" } }),
        "remove": () => post(paths.remove(id, handle), { token: token(), json: { block: false } }),
        "block": () => post(paths.remove(id, handle), { token: token(), json: { block: true } }),
      }[b.dataset.action];
      if (run) this.act(b, run);
    });

    // Member menus: Escape closes the open one (focus back on its button); so does a
    // click anywhere else.
    el.stage.addEventListener("keydown", (event) => {
      const menu = event.target.closest("details.member-actions");
      if (event.key === "Escape" && menu?.open) {
        menu.open = false;
        menu.querySelector("summary").focus();
      }
    });
    this.onDocumentClick = (event) => {
      for (const menu of el.stage.querySelectorAll("details.member-actions[open]")) {
        if (!menu.contains(event.target)) menu.open = false;
      }
    };
    document.addEventListener("click", this.onDocumentClick);

    el.inviteForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const handle = el.inviteHandle.value.trim().replace(/^@/, "");
      if (!handle) {
        el.inviteHandle.focus();
        return;
      }
      const role = el.inviteRole.value;
      this.act(el.inviteForm.querySelector("button"), async () => {
        await put(paths.role(id, handle), { token: token(), json: { role } });
        el.inviteHandle.value = "";
        toast(`Invited @${handle}.`);
      });
    });

    el.audienceForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const handle = el.audienceHandle.value.trim().replace(/^@/, "");
      if (!handle) {
        el.audienceHandle.focus();
        return;
      }
      this.act(el.audienceForm.querySelector("button"), async () => {
        await post(paths.invites(id), { token: token(), json: { handle } });
        el.audienceHandle.value = "";
        toast(`Invited @${handle} to listen.`);
        await this.loadInvites();
      }, { refresh: false });
    });
    el.audienceList.addEventListener("click", (event) => {
      const b = event.target.closest("button[data-action=revoke]");
      if (!b) return;
      const handle = b.dataset.handle;
      this.act(b, async () => {
        await del(paths.invite(id, handle), { token: token() });
        toast(`@${handle} is no longer invited.`);
        await this.loadInvites();
      }, { refresh: false });
    });

    el.pinForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const url = el.pinInput.value.trim();
      if (!url) {
        el.pinInput.focus();
        return;
      }
      this.act(el.pinForm.querySelector("button"), async () => {
        await put(paths.pin(id), { token: token(), json: { url } });
        el.pinInput.value = "";
        toast("Link pinned.");
      });
    });
    el.unpin.addEventListener("click", () => this.act(el.unpin, () =>
      put(paths.pin(id), { token: token(), json: { url: null } })));

    el.policy.addEventListener("change", () => this.act(el.policy, () =>
      put(paths.speakPolicy(id), { token: token(), json: { who_can_speak: el.policy.value } })));

    el.startSpace.addEventListener("click", () => this.act(el.startSpace, () =>
      post(paths.start(id), { token: token() })));

    el.end.addEventListener("click", () => {
      show(el.endConfirm, true);
      el.endConfirm.querySelector("#end-confirm-no").focus();
    });
    el.endConfirm.querySelector("#end-confirm-no").addEventListener("click", () => {
      show(el.endConfirm, false);
      el.end.focus();
    });
    el.editForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const start = new Date(el.editStart.value);
      this.act(el.root.querySelector("#edit-save"), async () => {
        const res = await call(paths.space(id), {
          method: "PATCH", token: token(),
          json: { title: el.editTitle.value, scheduled_start: start.toISOString() },
        });
        this.info = { ...this.info, ...res.data };
        toast(`Saved: starts ${formatWhen(this.info.scheduled_start)}.`);
        this.poller.refresh();
        return res;
      });
    });
    el.remind.addEventListener("click", () => this.toggleReminder());
    el.endConfirm.querySelector("#end-confirm-yes").addEventListener("click", (event) => {
      const reason = el.endReason.value.trim();
      this.act(event.currentTarget, () => post(paths.end(id), { token: token(), json: reason ? { reason } : undefined }));
    });

    el.reactionButtons.addEventListener("click", async (event) => {
      const b = event.target.closest("button[data-emoji]");
      if (!b || b.disabled) return;
      const emoji = b.dataset.emoji;
      try {
        await this.listener.react(emoji);
        if (!this.reducedMotion) floatEmoji(this.el, emoji);
      } catch (err) {
        if (err instanceof ApiError && err.retryAfterS != null) {
          this.renderReactionButtons();
          setTimeout(() => this.renderReactionButtons(), retryAfterMs(err.retryAfterS));
        }
        toast(describeError(err), { tone: "error" });
      }
    });

    this.onPageHide = () => {
      // Say goodbye without waiting (keepalive requests survive the page).
      this.listener.stop();
      this.publisher.stop({ release: this.mode === "stage" });
    };
    window.addEventListener("pagehide", this.onPageHide);
  }

  /** For diagnostics and the end-to-end tests: what this page hears right now. */
  exposeDiagnostics() {
    const page = this;
    this.diagnostics = {
      get mode() { return page.mode; },
      get role() { return page.role; },
      get version() { return page.state?.version ?? null; },
      get playerEngine() { return page.player.engine; },
      get playerLowLatency() { return page.player.hls ? page.player.hls.lowLatencyMode : null; },
      get playerStatus() { return page.player.status; },
      get micStatus() { return page.publisher.status; },
      get publishResource() { return page.publisher.resource; },
      get publisher() { return page.publisher; },
      get connectionState() { return page.publisher.pc?.connectionState ?? null; },
      get micProcessing() {
        return page.publisher.track ? page.publisher.track.getSettings().echoCancellation : null;
      },
      get currentTime() { return page.el.listenAudio.currentTime; },
      /** The front row: what is heard (path), switches, the push's buffer and the meter
       * on the page's output (longest gap since resetMeter(), frequency). */
      get frontRow() {
        const p = page.player;
        return {
          url: p.frontRowUrl,
          path: p.path,
          switches: p.switches.map((s) => s.to),
          push: p.frontRow ? { state: p.frontRow.state, messages: p.frontRow.messages, lost: p.frontRow.lost, mediaTime: p.frontRow.mediaTime, ...p.frontRow.stats } : null,
          meter: p.meter,
        };
      },
      resetMeter() { page.player.resetMeter(); },
      /** Stalls since playing started: `waiting` events, hls.js buffer stalls, rebuilds. */
      get playerStalls() { return { ...page.player.stalls }; },
      /** hls.js's live latency: where it plays (s behind the live edge), its target (the
       * playlist's PART-HOLD-BACK, raised by hls.js after each stall) and that hold-back. */
      get playerLatency() {
        const hls = page.player.hls;
        if (!hls) return null;
        const details = hls.latestLevelDetails;
        return { latency: hls.latency, target: hls.targetLatency, partHoldBack: details ? details.partHoldBack : null };
      },
      /** Captions: on or off, the player's subtitle track (-1: none), the cues held. */
      get captions() {
        return {
          on: page.captions.on,
          subtitleTrack: page.player.hls ? page.player.hls.subtitleTrack : null,
          cues: page.captions.cues.length,
        };
      },
      /** Magnitudes (dB) at `freqs` in what this page plays: the space (audience) or
       * the mix-minus (stage). */
      hearing(freqs) {
        const analyser = page.mode === "stage" ? page.publisher.mixAnalyser : page.player.analyser;
        return analyser ? { source: page.mode === "stage" ? "mix-minus" : "hls", ...tones(analyser, freqs) } : null;
      },
      microphone(freqs) {
        return page.publisher.micAnalyser ? tones(page.publisher.micAnalyser, freqs) : null;
      },
      /** The ICE servers the publisher's peer connection uses (null: none yet). */
      get iceServers() { return page.publisher.pc?.getConfiguration().iceServers ?? null; },
    };
    window.pnyx = window.pnyx || {};
    window.pnyx.space = this.diagnostics;
  }
}

/** Play the front row when the space offers it by default (unless the listener turned it
 * off: localStorage "pnyx.frontrow" = "off"), or when they opted in ("on"). */
function frontRowWanted(offer) {
  if (!offer) return false;
  let choice = null;
  try { choice = localStorage.getItem("pnyx.frontrow"); } catch { /* storage blocked */ }
  return offer.default ? choice !== "off" : choice === "on";
}

export function mount(main, { params, navigate }) {
  const page = new SpacePage(main, params[0], navigate);
  page.open();
  return () => page.close();
}
