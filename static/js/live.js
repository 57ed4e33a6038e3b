// Live progress for every job card on the page ([data-live-job]), each on its own
// websocket: queued / started / step / preview / encoding / succeeded / failed / cancelled.
// The server sends the job's stored state first on every (re)connect, so a reload or a
// dropped connection resumes where the job is. Queue positions are not pushed: they are
// read from the status URL while a card waits.
(function () {
  "use strict";
  const TERMINAL = ["succeeded", "failed", "cancelled"];
  const cards = Array.from(document.querySelectorAll("[data-live-job]"));
  if (!cards.length) return;

  function ordinal(n) {
    const suffix = n % 10 === 1 && n % 100 !== 11 ? "st" : n % 10 === 2 && n % 100 !== 12 ? "nd" : n % 10 === 3 && n % 100 !== 13 ? "rd" : "th";
    return `${n}${suffix}`;
  }

  function formatEta(seconds) {
    if (seconds == null || Number.isNaN(seconds)) return "";
    const s = Math.max(0, Math.round(seconds));
    return s >= 60 ? ` · about ${Math.floor(s / 60)} min ${s % 60} s left` : ` · about ${s} s left`;
  }

  function liveCard(card) {
    const q = (selector) => card.querySelector(selector);
    const bar = q("[data-bar]");
    const status = q("[data-status]");
    const stepText = q("[data-step-text]");
    const preview = q("[data-preview]");
    const player = q("[data-player]");
    const cancel = q("[data-cancel]");
    const open = q("[data-open]");
    let retries = 0;
    let socket = null;

    const finished = () => TERMINAL.includes(card.dataset.state);

    // A status badge elsewhere on the page (the video's details) follows the card.
    const badge = document.querySelector(`[data-live-badge="${card.dataset.jobId}"]`);
    const LABELS = { throttled: "Waiting for a free slot", queued: "Queued", running: "Running", encoding: "Encoding",
      succeeded: "Succeeded", failed: "Failed", cancelled: "Cancelled" };

    function setState(state, text) {
      card.dataset.state = state;
      if (status.textContent !== text) status.textContent = text;
      if (badge && LABELS[state]) {
        badge.textContent = LABELS[state];
        badge.className = `badge state-${state}`;
      }
    }

    function showStep(i, n, eta) {
      bar.max = n;
      bar.value = i;
      card.dataset.step = i;
      stepText.textContent = `Step ${i} of ${n}${formatEta(eta)}`;
    }

    function showWaiting() {
      const position = Number(card.dataset.position);
      if (card.dataset.state === "queued" && card.dataset.startingGpu === "true") {
        // No warm worker in the job's pool: one is starting (loading its model).
        stepText.textContent = "Starting a GPU…";
      } else if (card.dataset.state === "queued") {
        stepText.textContent = position ? `${ordinal(position)} in the queue` : "In the queue";
      } else if (card.dataset.state === "throttled") {
        stepText.textContent = "Starts when one of your running jobs ends";
      }
    }

    function end(state, text) {
      setState(state, text);
      if (cancel) cancel.hidden = true;
      if (open) open.hidden = false;
      if (socket) socket.close();
    }

    const handlers = {
      throttled() { setState("throttled", "Waiting for a free slot (your plan's limit of jobs at once)"); showWaiting(); },
      queued() { setState("queued", "Queued: waiting for a GPU"); showWaiting(); },
      started() {
        setState("running", "Generating");
        if (Number(card.dataset.step) === 0) stepText.textContent = `Step 0 of ${card.dataset.steps}`;
      },
      step(e) { setState("running", "Generating"); showStep(e.i, e.n, e.eta_seconds); },
      preview(e) { preview.src = e.image; preview.hidden = false; },
      encoding() {
        setState("encoding", "Encoding the video");
        bar.value = bar.max;
        card.dataset.step = bar.max;
        stepText.textContent = `Step ${bar.max} of ${bar.max} · encoding`;
      },
      succeeded(e) {
        bar.value = bar.max;
        card.dataset.step = bar.max;
        stepText.textContent = `Step ${bar.max} of ${bar.max} · done`;
        player.poster = e.poster_url;
        player.src = e.video_url;
        player.hidden = false;
        preview.hidden = true;
        player.play().catch(() => {});
        const download = q("[data-download]");
        if (download) download.hidden = false;
        end("succeeded", "Done");
      },
      failed(e) { end("failed", e.reason || "The job failed."); stepText.textContent = "No credits were used."; },
      cancelled() { end("cancelled", "Cancelled"); stepText.textContent = "Its credits are back in your balance."; },
    };

    function connect() {
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      socket = new WebSocket(`${scheme}://${location.host}/ws/jobs/${card.dataset.jobId}/`);
      socket.onopen = () => { retries = 0; };
      socket.onmessage = (message) => {
        const event = JSON.parse(message.data);
        const handle = handlers[event.type];
        if (handle) handle(event);
      };
      socket.onclose = (close) => {
        if (finished()) return;
        if (close.code === 4401 || close.code === 4404) {
          setState(card.dataset.state, "You no longer have access to this job.");
          return;
        }
        // Progress is best effort: reconnect, and the server re-sends the stored state.
        retries += 1;
        status.textContent = "Reconnecting…";
        setTimeout(connect, Math.min(10000, 500 * 2 ** retries));
      };
    }

    // Cancel without leaving the page; the websocket then reports "cancelled".
    if (cancel) {
      cancel.addEventListener("submit", async (event) => {
        event.preventDefault();
        const button = cancel.querySelector("button");
        button.disabled = true;
        try {
          const response = await fetch(cancel.action, {
            method: "POST",
            body: new FormData(cancel),
            headers: { Accept: "application/json" },
            credentials: "same-origin",
          });
          const body = await response.json();
          if (body.job && TERMINAL.includes(body.job.state)) handlers[body.job.state]({ reason: body.message });
        } catch (error) {
          button.disabled = false;
          status.textContent = "Could not cancel; try again.";
        }
      });
    }

    return {
      card,
      connect,
      applyStatus(job) {
        card.dataset.position = job.queue_position == null ? "" : job.queue_position;
        card.dataset.startingGpu = job.starting_gpu ? "true" : "";
        if (job.state === "queued" || job.state === "throttled") {
          if (card.dataset.state !== job.state) handlers[job.state]();
          showWaiting();
        }
      },
      start() {
        const step = Number(card.dataset.step);
        if (card.dataset.state === "running" && step > 0) {
          showStep(step, Number(card.dataset.steps), card.dataset.eta === "" ? null : Number(card.dataset.eta));
        } else if (card.dataset.state === "running") {
          stepText.textContent = `Step 0 of ${card.dataset.steps}`;
        }
        showWaiting();
        if (!finished()) connect();
      },
    };
  }

  const live = cards.map(liveCard);
  live.forEach((entry) => entry.start());

  // Queue positions change as other jobs start: poll them while any card waits.
  const statusUrl = cards[0].dataset.statusUrl;
  async function pollPositions() {
    const waiting = live.filter((entry) => ["queued", "throttled"].includes(entry.card.dataset.state));
    if (waiting.length) {
      try {
        const ids = waiting.map((entry) => entry.card.dataset.jobId).join(",");
        const response = await fetch(`${statusUrl}?ids=${ids}`, { credentials: "same-origin" });
        if (response.ok) {
          const body = await response.json();
          for (const job of body.jobs) {
            const entry = waiting.find((candidate) => candidate.card.dataset.jobId === job.id);
            if (entry) entry.applyStatus(job);
          }
        }
      } catch (error) { /* the next poll tries again */ }
    }
    if (live.some((entry) => !TERMINAL.includes(entry.card.dataset.state))) setTimeout(pollPositions, 3000);
  }
  setTimeout(pollPositions, 1500);
})();
