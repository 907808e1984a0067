// Passkeys on the hosted pages: the WebAuthn calls a form cannot make. Every request goes to this
// site's own API as JSON, with the session cookie; nothing else is loaded and nothing is stored.
"use strict";
(() => {
  const supported = () =>
    window.PublicKeyCredential &&
    typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function" &&
    typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function";

  async function api(path, body) {
    const response = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify(body || {}),
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      if (answer.error && answer.error.code === "password_confirmation_required") {
        throw new Error("Confirm it's you first (\u201cEmail me a code\u201d above), then try again.");
      }
      throw new Error((answer.error && answer.error.message) || "Something went wrong; try again.");
    }
    return answer;
  }

  async function create() {
    const { publicKey } = await api("/user/passkeys/options");
    const options = PublicKeyCredential.parseCreationOptionsFromJSON(publicKey);
    return (await navigator.credentials.create({ publicKey: options })).toJSON();
  }

  async function get() {
    const { publicKey } = await api("/passkeys/options");
    const options = PublicKeyCredential.parseRequestOptionsFromJSON(publicKey);
    return (await navigator.credentials.get({ publicKey: options })).toJSON();
  }

  const actions = {
    // The account page's form: the password confirmed (an account without one has no field: it
    // relies on its confirmation by mail), then a new passkey under the name given.
    async register(form) {
      const data = new FormData(form);
      if (data.has("password")) await api("/user/confirm-password", { password: data.get("password") });
      await api("/user/passkeys", { name: data.get("name"), credential: await create() });
      location.assign("/account?notice=passkey-added");
    },
    // The sign-in page: a passkey alone.
    async "sign-in"(form) {
      const remember = form.querySelector("input[name=passkey_remember]");
      await api("/passkeys/login", { credential: await get(), remember: !!(remember && remember.checked) });
      location.assign("/account");
    },
    // The two-factor step: a passkey of the same account answers the challenge.
    async "second-factor"(form) {
      const challenge = form.querySelector("input[name=challenge]").value;
      await api("/two-factor-challenge", { challenge, passkey: await get() });
      location.assign("/account");
    },
  };

  for (const form of document.querySelectorAll("form[data-passkey]")) {
    const status = form.querySelector(".passkey-status");
    if (!supported()) {
      status.textContent = "This browser cannot use passkeys.";
      form.querySelector("button").disabled = true;
      continue;
    }
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      status.textContent = "Waiting for your passkey…";
      try {
        await actions[form.dataset.passkey](form);
      } catch (error) {
        status.textContent =
          error.name === "NotAllowedError" ? "The passkey request was cancelled or timed out." : error.message;
      }
    });
  }
})();
