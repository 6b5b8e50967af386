// Create a space: now or scheduled, who may listen (public, unlisted, private), who may
// ask to speak, recorded or not, captioned or not.

import { ApiError, paths, post } from "../api.js";
import { currentSession } from "../session.js";
import { describeError, h } from "../ui.js";

function localInputValue(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

export function mount(main, { navigate }) {
  document.title = "Start a space · Pnyx";
  const session = currentSession();
  if (!session) {
    main.append(h("section", { class: "narrow" },
      h("h1", {}, "Start a space"),
      h("p", {}, "You need an account to host a space. ",
        h("a", { href: "/signin?next=/new", "data-link": true }, "Sign in"), " or ",
        h("a", { href: "/signin?mode=signup&next=/new", "data-link": true }, "create an account"), ".")));
    return null;
  }

  const title = h("input", { id: "space-title", name: "title", required: true, maxlength: 120, autocomplete: "off" });
  const now = h("input", { type: "radio", name: "when", id: "when-now", value: "now", checked: true });
  const later = h("input", { type: "radio", name: "when", id: "when-later", value: "later" });
  const soon = new Date(Date.now() + 60 * 60 * 1000);
  soon.setMinutes(0, 0, 0);
  const at = h("input", {
    type: "datetime-local", id: "space-start", name: "scheduled_start",
    value: localInputValue(soon), min: localInputValue(new Date()), disabled: true,
  });
  const policy = h("select", { id: "space-policy", name: "who_can_speak" },
    h("option", { value: "everyone" }, "Anyone listening"),
    h("option", { value: "followed" }, "Only people I follow"),
    h("option", { value: "nobody" }, "Nobody: invite only"));
  const visibility = h("select", { id: "space-visibility", name: "visibility", "aria-describedby": "space-visibility-hint" },
    h("option", { value: "public" }, "Public: listed, anyone can listen"),
    h("option", { value: "unlisted" }, "Unlisted: anyone with the link can listen"),
    h("option", { value: "private" }, "Private: only people you choose"));
  const visibilityHint = h("p", { class: "hint", id: "space-visibility-hint" });
  const audience = h("select", { id: "space-audience", name: "audience" },
    h("option", { value: "invited" }, "Only people I invite"),
    h("option", { value: "followers" }, "My followers and people I invite"));
  const audienceField = h("div", { class: "field", hidden: true },
    h("label", { for: "space-audience" }, "Who can listen"), audience);
  const onVisibility = () => {
    audienceField.hidden = visibility.value !== "private";
    visibilityHint.textContent = {
      public: "It shows on the home page and your followers are told when it starts.",
      unlisted: "It shows in no list and nobody is told; share its link.",
      private: "It shows in no list. Invite people by handle on the space's page.",
    }[visibility.value];
  };
  visibility.addEventListener("change", onVisibility);
  onVisibility();
  const record = h("input", { type: "checkbox", id: "space-record", name: "record" });
  const captions = h("input", { type: "checkbox", id: "space-captions", name: "captions", checked: true, "aria-describedby": "space-captions-hint" });
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const submit = h("button", { class: "button button-primary", type: "submit" }, "Go live now");

  const onWhen = () => {
    at.disabled = !later.checked;
    submit.textContent = later.checked ? "Schedule" : "Go live now";
  };
  now.addEventListener("change", onWhen);
  later.addEventListener("change", onWhen);

  const form = h("form", { class: "card form", "aria-labelledby": "create-heading" },
    h("div", { class: "field" }, h("label", { for: "space-title" }, "Title"), title),
    h("fieldset", { class: "field" },
      h("legend", {}, "When"),
      h("div", { class: "choice" }, now, h("label", { for: "when-now" }, "Now")),
      h("div", { class: "choice" }, later, h("label", { for: "when-later" }, "Later, at")),
      h("label", { class: "visually-hidden", for: "space-start" }, "Start time"),
      at),
    h("div", { class: "field" }, h("label", { for: "space-visibility" }, "Who can find it"), visibility, visibilityHint),
    audienceField,
    h("div", { class: "field" }, h("label", { for: "space-policy" }, "Who may ask to speak"), policy),
    h("div", { class: "choice field" }, record, h("label", { for: "space-record" }, "Record this space (a replay will be available after it ends)")),
    h("div", { class: "field" },
      h("div", { class: "choice" }, captions, h("label", { for: "space-captions" }, "Live captions")),
      h("p", { class: "hint", id: "space-captions-hint" },
        "What is said is transcribed as it is spoken: listeners can turn captions on, and the transcript stays with the space.")),
    error,
    h("div", { class: "actions" }, submit),
  );

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    const body = { title: title.value.trim(), who_can_speak: policy.value, record: record.checked, captions: captions.checked, visibility: visibility.value };
    if (visibility.value === "private") body.audience = audience.value;
    if (!body.title) {
      error.textContent = "Give your space a title.";
      error.hidden = false;
      title.focus();
      return;
    }
    if (later.checked) {
      const when = new Date(at.value);
      if (Number.isNaN(when.getTime()) || when <= new Date()) {
        error.textContent = "Pick a start time in the future.";
        error.hidden = false;
        at.focus();
        return;
      }
      body.scheduled_start = when.toISOString();
    }
    submit.disabled = true;
    try {
      const res = await post(paths.createSpace, { token: session.token, json: body });
      navigate(`/s/${res.data.id}`);
    } catch (err) {
      error.textContent = err instanceof ApiError ? describeError(err) : String(err);
      error.hidden = false;
      submit.disabled = false;
    }
  });

  main.append(h("section", { class: "narrow" }, h("h1", { id: "create-heading" }, "Start a space"), form));
  title.focus();
  return null;
}
