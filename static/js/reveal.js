// Show-password toggles. Each password field's "Show" button is hidden in the markup and shown
// here, so that a page without scripts looks and works the same, only without the toggle.
for (const button of document.querySelectorAll("button[data-reveal]")) {
  const input = document.getElementById(button.dataset.reveal);
  if (!input) continue;
  button.hidden = false;
  button.addEventListener("click", () => {
    const shown = input.type === "password";
    input.type = shown ? "text" : "password";
    input.toggleAttribute("data-revealed", shown);
    button.setAttribute("aria-pressed", String(shown));
    input.focus();
  });
  // Submitted as a password field, whatever was last shown, so password managers see it.
  input.form?.addEventListener("submit", () => {
    input.type = "password";
  });
}
