// Sign in, or sign up (register, then sign in).

import { ApiError, paths, post } from "../api.js";
import { setSession } from "../session.js";
import { describeError, h } from "../ui.js";

function safeNext(query) {
  const next = query.get("next") || "/";
  return next.startsWith("/") && !next.startsWith("//") ? next : "/";
}

export function mount(main, { query, navigate }) {
  document.title = "Sign in · Pnyx";
  let mode = query.get("mode") === "signup" ? "signup" : "signin";

  const error = h("p", { class: "form-error", id: "auth-error", role: "alert", hidden: true });
  const handle = h("input", {
    id: "auth-handle", name: "handle", autocomplete: "username", required: true,
    maxlength: 64, autocapitalize: "none", spellcheck: "false", "aria-describedby": "auth-handle-hint",
  });
  const password = h("input", {
    id: "auth-password", name: "password", type: "password", required: true, maxlength: 1024,
    autocomplete: "current-password", "aria-describedby": "auth-password-hint",
  });
  const displayName = h("input", { id: "auth-display", name: "display_name", maxlength: 64, autocomplete: "name" });
  const displayRow = h("div", { class: "field" },
    h("label", { for: "auth-display" }, "Display name (optional)"), displayName);
  const passwordHint = h("p", { class: "hint", id: "auth-password-hint" });
  const submit = h("button", { class: "button button-primary", type: "submit" });
  const heading = h("h1", {});
  const switcher = h("button", { type: "button", class: "button-link" });

  function applyMode() {
    const signup = mode === "signup";
    heading.textContent = signup ? "Create your account" : "Sign in";
    submit.textContent = signup ? "Sign up" : "Sign in";
    switcher.textContent = signup ? "Have an account? Sign in" : "New here? Create an account";
    password.autocomplete = signup ? "new-password" : "current-password";
    passwordHint.textContent = signup ? "At least 8 characters, and not a common password: a few uncommon words work well." : "";
    displayRow.hidden = !signup;
    error.hidden = true;
    document.title = `${signup ? "Sign up" : "Sign in"} · Pnyx`;
  }

  switcher.addEventListener("click", () => {
    mode = mode === "signup" ? "signin" : "signup";
    applyMode();
    handle.focus();
  });

  const form = h("form", { class: "card form", novalidate: true, "aria-labelledby": "auth-heading" },
    h("div", { class: "field" },
      h("label", { for: "auth-handle" }, "Handle"),
      handle,
      h("p", { class: "hint", id: "auth-handle-hint" }, "Letters, digits and underscores; how others see you: @handle.")),
    h("div", { class: "field" }, h("label", { for: "auth-password" }, "Password"), password, passwordHint),
    displayRow,
    error,
    h("div", { class: "actions" }, submit, switcher),
  );
  heading.id = "auth-heading";

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    if (!handle.value.trim() || !password.value) {
      error.textContent = "Enter a handle and a password.";
      error.hidden = false;
      (handle.value.trim() ? password : handle).focus();
      return;
    }
    submit.disabled = true;
    try {
      const creds = { handle: handle.value.trim().replace(/^@/, ""), password: password.value };
      if (mode === "signup") {
        const account = { ...creds };
        if (displayName.value.trim()) account.display_name = displayName.value.trim();
        await post(paths.accounts, { json: account });
      }
      const res = await post(paths.sessions, { json: creds });
      setSession({ handle: res.data.account.handle, token: res.data.token });
      navigate(safeNext(query), { replace: true });
    } catch (err) {
      error.textContent = err instanceof ApiError ? describeError(err) : String(err);
      error.hidden = false;
      error.focus?.();
    } finally {
      submit.disabled = false;
    }
  });

  applyMode();
  main.append(h("section", { class: "narrow" }, heading, form));
  handle.focus();
  return null;
}
