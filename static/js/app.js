// Small behaviours shared by every page, attached by data- attributes (no inline handlers:
// the Content-Security-Policy allows scripts from files only).
(function () {
  "use strict";

  // The team switcher posts to the chosen team's switch URL as soon as it changes.
  document.querySelectorAll("select[data-switch-team]").forEach((select) => {
    select.addEventListener("change", () => {
      select.form.action = select.value;
      select.form.submit();
    });
  });

  // Read-only secrets and links select themselves when clicked, ready to copy.
  document.querySelectorAll("[data-select-on-click]").forEach((input) => {
    input.addEventListener("click", () => input.select());
  });

  // <button data-copy="#id">: copies that field's value and says so.
  document.querySelectorAll("button[data-copy]").forEach((button) => {
    button.addEventListener("click", async () => {
      const field = document.querySelector(button.dataset.copy);
      if (!field) return;
      field.select();
      const label = button.textContent;
      try {
        await navigator.clipboard.writeText(field.value);
        button.textContent = "Copied";
      } catch (error) {
        button.textContent = "Press Ctrl+C";
      }
      setTimeout(() => { button.textContent = label; }, 1500);
    });
  });

  // <form data-confirm="question">: asks before submitting (deleting, for example).
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
})();
