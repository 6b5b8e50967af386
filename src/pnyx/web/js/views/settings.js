// Account settings: display name and bio, the password, webhooks (views/webhooks.js),
// deleting the account.

import { ApiError, get, patch, paths, post } from "../api.js";
import { currentSession, setSession } from "../session.js";
import { describeError, h, toast } from "../ui.js";
import { WebhooksSection } from "./webhooks.js";

function errorLine(id) {
  return h("p", { class: "form-error", id, role: "alert", hidden: true });
}

function fail(el, err) {
  el.textContent = err instanceof ApiError ? describeError(err) : String(err);
  el.hidden = false;
}

export function mount(main, { navigate }) {
  document.title = "Settings · Pnyx";
  const session = currentSession();
  if (!session) {
    main.append(h("section", { class: "narrow" }, h("h1", {}, "Settings"),
      h("p", {}, h("a", { href: "/signin?next=/settings", "data-link": true }, "Sign in"), " to change your account.")));
    return null;
  }
  const token = session.token;
  const controller = new AbortController();

  // -- profile ----------------------------------------------------------------------
  const displayName = h("input", { id: "settings-display", maxlength: 64, autocomplete: "name", required: true });
  const bio = h("textarea", { id: "settings-bio", maxlength: 280, rows: 3, "aria-describedby": "settings-bio-hint" });
  const profileError = errorLine("settings-profile-error");
  const saveProfile = h("button", { class: "button button-primary", type: "submit", id: "settings-save" }, "Save");
  const profileForm = h("form", { class: "card form", "aria-labelledby": "settings-profile-heading", novalidate: true },
    h("h2", { id: "settings-profile-heading" }, "Profile"),
    h("div", { class: "field" }, h("label", { for: "settings-display" }, "Display name"), displayName),
    h("div", { class: "field" }, h("label", { for: "settings-bio" }, "Bio"), bio,
      h("p", { class: "hint", id: "settings-bio-hint" }, "At most 280 characters, shown on your profile.")),
    profileError,
    h("div", { class: "actions" }, saveProfile,
      h("a", { href: `/u/${session.handle}`, "data-link": true }, "See your profile")));
  profileForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    profileError.hidden = true;
    if (!displayName.value.trim()) return fail(profileError, "Enter a display name.");
    saveProfile.disabled = true;
    try {
      await patch(paths.account, { token, json: { display_name: displayName.value.trim(), bio: bio.value.trim() } });
      toast("Your profile is saved.");
    } catch (err) {
      fail(profileError, err);
    } finally {
      saveProfile.disabled = false;
    }
  });

  // -- password ---------------------------------------------------------------------
  const oldPassword = h("input", { id: "settings-old-password", type: "password", autocomplete: "current-password", required: true });
  const newPassword = h("input", { id: "settings-new-password", type: "password", autocomplete: "new-password", required: true, "aria-describedby": "settings-new-hint" });
  const passwordError = errorLine("settings-password-error");
  const changePassword = h("button", { class: "button", type: "submit", id: "settings-change-password" }, "Change password");
  const passwordForm = h("form", { class: "card form", "aria-labelledby": "settings-password-heading", novalidate: true },
    h("h2", { id: "settings-password-heading" }, "Password"),
    h("div", { class: "field" }, h("label", { for: "settings-old-password" }, "Current password"), oldPassword),
    h("div", { class: "field" }, h("label", { for: "settings-new-password" }, "New password"), newPassword,
      h("p", { class: "hint", id: "settings-new-hint" }, "Every other device you are signed in on will be signed out.")),
    passwordError,
    h("div", { class: "actions" }, changePassword));
  passwordForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    passwordError.hidden = true;
    if (!oldPassword.value || !newPassword.value) return fail(passwordError, "Enter your current and your new password.");
    changePassword.disabled = true;
    try {
      const res = await post(paths.password, { token, json: { old_password: oldPassword.value, new_password: newPassword.value } });
      setSession({ handle: res.data.account.handle, token: res.data.token });
      oldPassword.value = newPassword.value = "";
      toast("Password changed; your other sessions are signed out.");
    } catch (err) {
      fail(passwordError, err);
    } finally {
      changePassword.disabled = false;
    }
  });

  // -- delete -----------------------------------------------------------------------
  const deletePassword = h("input", { id: "settings-delete-password", type: "password", autocomplete: "current-password", required: true });
  const deleteError = errorLine("settings-delete-error");
  const deleteButton = h("button", { class: "button button-danger", type: "submit", id: "settings-delete" }, "Delete my account");
  const deleteForm = h("form", { class: "card form danger-zone", "aria-labelledby": "settings-delete-heading", novalidate: true },
    h("h2", { id: "settings-delete-heading" }, "Delete your account"),
    h("p", {}, "Your live spaces end and scheduled ones are cancelled. Your follows, blocks, notifications, "
      + "invitations and unrecorded past spaces are deleted. Recorded spaces and their replays stay "
      + "(others may have spoken in them). Your handle stays reserved, so nobody can pose as you."),
    h("div", { class: "field" }, h("label", { for: "settings-delete-password" }, "Your password, to confirm"), deletePassword),
    deleteError,
    h("div", { class: "actions" }, deleteButton));
  deleteForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    deleteError.hidden = true;
    if (!deletePassword.value) return fail(deleteError, "Enter your password to confirm.");
    deleteButton.disabled = true;
    try {
      await post(paths.deleteAccount, { token, json: { password: deletePassword.value } });
      setSession(null);
      navigate("/", { replace: true });
      toast("Your account is deleted.");
    } catch (err) {
      fail(deleteError, err);
      deleteButton.disabled = false;
    }
  });

  // -- webhooks ---------------------------------------------------------------------
  const webhooks = new WebhooksSection(token);

  main.append(h("section", { class: "narrow settings" }, h("h1", {}, "Settings"), profileForm, passwordForm, webhooks.el, deleteForm));
  webhooks.load();

  get(paths.account, { token, signal: controller.signal }).then((res) => {
    displayName.value = res.data.display_name;
    bio.value = res.data.bio;
  }, (err) => {
    if (err.name !== "AbortError") fail(profileError, err);
  });
  return () => {
    controller.abort();
    webhooks.close();
  };
}
