// Passkey ceremonies. A page that runs one holds its options in an inert JSON element
// (#passkey-options) and a form marked data-passkey="create" or "get" whose hidden field
// "credential" carries the browser's answer back in an ordinary POST (with the form's CSRF
// token). The form's button is hidden in the markup and shown here only where the browser
// has passkeys, so a page without scripts offers nothing it cannot do.
(() => {
  const form = document.querySelector("form[data-passkey]");
  const source = document.getElementById("passkey-options");
  if (!form || !source || !window.PublicKeyCredential) return;
  const options = JSON.parse(source.textContent);
  const button = form.querySelector("button[type=submit]");
  const problem = document.getElementById("passkey-problem");
  button.hidden = false;

  const bytes = (text) => {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  };
  const text = (buffer) =>
    btoa(String.fromCharCode(...new Uint8Array(buffer)))
      .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const credentials = (list) => (list || []).map((c) => ({ ...c, id: bytes(c.id) }));

  const ask = async () => {
    if (form.dataset.passkey === "create") {
      const publicKey = {
        ...options,
        challenge: bytes(options.challenge),
        user: { ...options.user, id: bytes(options.user.id) },
        excludeCredentials: credentials(options.excludeCredentials),
      };
      const made = await navigator.credentials.create({ publicKey });
      return {
        id: made.id, rawId: text(made.rawId), type: made.type,
        response: {
          attestationObject: text(made.response.attestationObject),
          clientDataJSON: text(made.response.clientDataJSON),
        },
        extensions: made.getClientExtensionResults(),
      };
    }
    const publicKey = {
      ...options,
      challenge: bytes(options.challenge),
      allowCredentials: credentials(options.allowCredentials),
    };
    const used = await navigator.credentials.get({ publicKey });
    return {
      id: used.id, rawId: text(used.rawId), type: used.type,
      response: {
        authenticatorData: text(used.response.authenticatorData),
        clientDataJSON: text(used.response.clientDataJSON),
        signature: text(used.response.signature),
        userHandle: used.response.userHandle ? text(used.response.userHandle) : null,
      },
      extensions: used.getClientExtensionResults(),
    };
  };

  form.addEventListener("submit", async (event) => {
    if (form.elements.credential.value) return;
    event.preventDefault();
    button.disabled = true;
    try {
      form.elements.credential.value = JSON.stringify(await ask());
      form.submit();
    } catch (error) {
      button.disabled = false;
      if (problem) {
        problem.hidden = false;
        problem.textContent = "The passkey was not used (" + error.name + "). Try again, or go back.";
      }
    }
  });
})();

// Links to passkey pages, hidden in the markup, shown where the browser has passkeys.
if (window.PublicKeyCredential) {
  for (const element of document.querySelectorAll("[data-needs-passkeys]")) element.hidden = false;
}
