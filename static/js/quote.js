// Shows a generation form's price before it is submitted, asking the server (one pricing rule).
(function () {
  "use strict";
  document.querySelectorAll("form[data-quote-url]").forEach((form) => {
    const out = form.querySelector("[data-price]");
    const unit = form.querySelector("[data-price-unit]");
    let timer = null;
    async function update() {
      const query = new URLSearchParams(new FormData(form));
      query.delete("csrfmiddlewaretoken");
      try {
        const response = await fetch(`${form.dataset.quoteUrl}?${query}`, { credentials: "same-origin" });
        const body = await response.json();
        out.textContent = response.ok ? body.price_credits : "–";
        unit.textContent = response.ok && body.price_credits === 1 ? "credit" : "credits";
        out.title = response.ok ? "" : Object.values(body.errors || {}).flat().join(" ");
      } catch (error) {
        out.textContent = "–";
      }
    }
    form.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(update, 250); });
    update();
  });
})();
