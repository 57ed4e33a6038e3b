// Live progress for one job: a websocket carries queued/started/step/encoding/succeeded/failed.
// The server sends the job's stored state first on every (re)connect, so a reload or a
// dropped connection resumes where the job is.
(function () {
  "use strict";
  const card = document.getElementById("job");
  if (!card) return;
  const el = (id) => document.getElementById(id);
  const bar = el("bar");
  const status = el("status");
  const stepText = el("step-text");
  let finished = ["succeeded", "failed", "cancelled"].includes(card.dataset.state);
  let retries = 0;

  function setStatus(text) { status.textContent = text; }

  function showStep(i, n, eta) {
    bar.max = n;
    bar.value = i;
    card.dataset.step = i;
    const left = eta == null ? "" : ` · about ${Math.max(0, Math.round(eta))} s left`;
    stepText.textContent = `Step ${i} of ${n}${left}`;
  }

  function finish(state) {
    finished = true;
    card.dataset.state = state;
    el("progress").hidden = true;
  }

  const handlers = {
    throttled() { card.dataset.state = "throttled"; setStatus("Waiting for a free slot: your plan runs a limited number of jobs at once…"); },
    queued() { card.dataset.state = "queued"; setStatus("Waiting for a GPU…"); },
    started() { card.dataset.state = "running"; setStatus("Generating…"); },
    step(e) { card.dataset.state = "running"; setStatus("Generating…"); showStep(e.i, e.n, e.eta_seconds); },
    preview(e) {
      const image = el("preview");
      image.src = e.image;
      image.hidden = false;
    },
    encoding() {
      card.dataset.state = "encoding";
      bar.value = bar.max;
      setStatus("Encoding video…");
      stepText.textContent = "";
    },
    succeeded(e) {
      finish("succeeded");
      const player = el("player");
      player.poster = e.poster_url;
      player.src = e.video_url;
      el("download").href = e.video_url + "?download=1";
      el("result").hidden = false;
      player.play().catch(() => {});
    },
    failed(e) { finish("failed"); el("failure").textContent = e.reason; el("failure").hidden = false; },
    cancelled() { finish("cancelled"); el("failure").textContent = "This job was cancelled."; el("failure").hidden = false; },
  };

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/ws/jobs/${card.dataset.jobId}/`);
    socket.onopen = () => { retries = 0; };
    socket.onmessage = (message) => {
      const event = JSON.parse(message.data);
      const handle = handlers[event.type];
      if (handle) handle(event);
      if (finished) socket.close();
    };
    socket.onclose = (close) => {
      if (finished) return;
      if (close.code === 4401 || close.code === 4404) {
        setStatus("You no longer have access to this job.");
        return;
      }
      // Progress is best effort: reconnect, and the server re-sends the stored state.
      retries += 1;
      setStatus("Reconnecting…");
      setTimeout(connect, Math.min(10000, 500 * 2 ** retries));
    };
  }

  if (card.dataset.state === "running" && Number(card.dataset.step) > 0) {
    showStep(Number(card.dataset.step), Number(card.dataset.steps), null);
  }
  if (!finished) connect();
})();
