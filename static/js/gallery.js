// Gallery tiles play their video while pointed at or focused, and show the poster again after.
(function () {
  "use strict";
  const still = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  document.querySelectorAll("a[data-hover-video]").forEach((link) => {
    const media = link.querySelector(".tile-media");
    let video = null;
    function play() {
      if (still) return;
      if (!video) {
        video = document.createElement("video");
        video.muted = true;
        video.loop = true;
        video.playsInline = true;
        video.preload = "auto";
        video.className = "tile-video";
        video.setAttribute("aria-hidden", "true");
        video.src = link.dataset.hoverVideo;
        media.appendChild(video);
      }
      video.hidden = false;
      video.play().catch(() => {});
    }
    function stop() {
      if (!video) return;
      video.pause();
      video.currentTime = 0;
      video.hidden = true;
    }
    link.addEventListener("mouseenter", play);
    link.addEventListener("focus", play);
    link.addEventListener("mouseleave", stop);
    link.addEventListener("blur", stop);
  });
})();
