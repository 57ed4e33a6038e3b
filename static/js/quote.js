// Shows a generation form's price before it is submitted, asking the server (one pricing rule).
(function () {
  "use strict";
  document.querySelectorAll("form[data-quote-url]").forEach((form) => {
    const out = form.querySelector("[data-price]");
    const unit = form.querySelector("[data-price-unit]");
    const shape = form.querySelector("[data-shape]");
    let timer = null;
    let latest = 0;
    async function update() {
      const query = new URLSearchParams(new FormData(form));
      query.delete("csrfmiddlewaretoken");
      query.delete("next");
      const asked = ++latest;
      try {
        const response = await fetch(`${form.dataset.quoteUrl}?${query}`, { credentials: "same-origin" });
        const body = await response.json();
        if (asked !== latest) return;  // an older answer arriving late
        out.textContent = response.ok ? body.price_credits : "–";
        unit.textContent = response.ok && body.price_credits === 1 ? "credit" : "credits";
        out.title = response.ok ? "" : Object.values(body.errors || {}).flat().join(" ");
        if (shape) {
          shape.textContent = response.ok
            ? `· ${body.width}×${body.height}, ${body.num_frames} frames`
            : `· ${Object.values(body.errors || {}).flat()[0] || ""}`;
        }
      } catch (error) {
        out.textContent = "–";
      }
    }
    form.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(update, 250); });
    form.addEventListener("change", () => { clearTimeout(timer); timer = setTimeout(update, 250); });
    update();
  });
})();
