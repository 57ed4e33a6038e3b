// The studio form: options follow the chosen model, the size follows the aspect ratio and
// resolution (and choices the plan does not allow stay greyed out, naming the plan that
// does), the dice rolls a seed. The server decides everything again on submit.
(function () {
  "use strict";
  const form = document.querySelector("form[data-studio]");
  if (!form) return;
  const model = form.querySelector("[data-model-select]");
  const aspect = form.querySelector("[data-aspect]");
  const resolution = form.querySelector("[data-resolution]");
  const duration = form.querySelector("[data-duration]");
  const steps = form.querySelector("[data-steps]");
  const speed = form.querySelector("[data-speed]");
  const speedNote = form.querySelector("[data-speed-note]");
  const guidance = form.querySelector("#id_guidance");
  const sizeText = form.querySelector("[data-size-text]");
  const width = form.querySelector("#id_width");
  const height = form.querySelector("#id_height");
  const frames = form.querySelector("#id_num_frames");
  const seed = form.querySelector("#id_seed");
  const MAX_SEED = 4294967295;

  function ownOptions(select) {
    return Array.from(select.options).filter((option) => option.dataset.model);
  }

  // Show only the chosen model's options; keep a valid, allowed one selected.
  function followModel(select) {
    let chosenOk = false;
    for (const option of ownOptions(select)) {
      const mine = option.dataset.model === model.value;
      option.hidden = !mine;
      option.disabled = !mine || Boolean(option.dataset.needs);
      if (option.selected && !option.disabled) chosenOk = true;
    }
    if (!chosenOk) {
      const first = ownOptions(select).find((option) => !option.disabled);
      if (first) first.selected = true;
    }
  }

  function currentSize() {
    const option = resolution.selectedOptions[0];
    if (!option || !option.dataset.sizes) return null;
    return JSON.parse(option.dataset.sizes)[aspect.value] || null;
  }

  // Resolutions the plan allows depend on the aspect ratio (the long side grows).
  function followAspect() {
    const custom = aspect.value === "custom";
    resolution.disabled = custom;
    width.disabled = !custom;
    height.disabled = !custom;
    for (const option of ownOptions(resolution)) {
      if (option.dataset.model !== model.value) continue;
      const size = JSON.parse(option.dataset.sizes)[aspect.value];
      const needs = size ? size.needs : "";
      option.dataset.needs = needs;
      option.disabled = Boolean(needs);
      option.textContent = option.dataset.label + (needs ? ` — ${needs} plan` : "");
    }
    if (resolution.selectedOptions[0] && resolution.selectedOptions[0].disabled) {
      const allowed = ownOptions(resolution).find((option) => option.dataset.model === model.value && !option.disabled);
      if (allowed) allowed.selected = true;
    }
    const size = custom ? null : currentSize();
    if (size) {
      width.value = size.width;
      height.value = size.height;
    }
    sizeText.textContent = custom ? "Set width and height under Advanced." : size ? `${size.width}×${size.height} pixels` : "";
  }

  function followDuration() {
    frames.disabled = duration.value !== "";
  }

  // Turbo runs its adapter's own steps and guidance: the menus say so instead.
  function followSpeed() {
    const option = speed.selectedOptions[0];
    const fixed = option ? option.dataset.fixed : "";
    steps.disabled = Boolean(fixed);
    guidance.disabled = Boolean(fixed);
    speedNote.textContent = option ? option.dataset.note + (fixed ? ` (runs ${fixed})` : "") : "";
  }

  // What the chosen model understands (the toy model knows only its synthetic world).
  function showModelNote() {
    for (const note of document.querySelectorAll("[data-model-note]")) {
      note.hidden = note.dataset.modelNote !== model.value;
    }
  }

  // LoRA pickers offer the chosen model's LoRAs only; one made for another model is dropped.
  function followModelLoras() {
    for (const select of form.querySelectorAll("[data-lora-select]")) {
      for (const option of Array.from(select.options).filter((option) => option.dataset.model)) {
        const mine = option.dataset.model === model.value;
        option.hidden = !mine;
        option.disabled = !mine;
        if (option.selected && !mine) select.value = "";
      }
    }
  }

  function refresh() {
    showModelNote();
    followModelLoras();
    followModel(resolution);
    followModel(duration);
    followModel(steps);
    followModel(speed);
    followSpeed();
    followAspect();
    followDuration();
    form.dispatchEvent(new Event("input", { bubbles: true }));  // the price follows
  }

  model.addEventListener("change", refresh);
  aspect.addEventListener("change", refresh);
  resolution.addEventListener("change", refresh);
  duration.addEventListener("change", refresh);
  speed.addEventListener("change", () => {
    followSpeed();
    form.dispatchEvent(new Event("input", { bubbles: true }));
  });

  form.querySelector("[data-dice]").addEventListener("click", () => {
    const values = new Uint32Array(1);
    crypto.getRandomValues(values);
    seed.value = Math.min(values[0], MAX_SEED);
    form.dispatchEvent(new Event("input", { bubbles: true }));
  });

  followSpeed();
  followAspect();
  followDuration();
})();
