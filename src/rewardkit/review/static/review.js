// Keyboard shortcuts and the per-item timer of the labeling page. Plain JS, no inline handlers (the page's
// Content-Security-Policy allows scripts from /static only).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const timer = document.getElementById("timer");
  if (timer) {
    const start = Date.now() - 1000 * Number(timer.dataset.start || 0);
    setInterval(() => { timer.textContent = Math.round((Date.now() - start) / 1000) + "s"; }, 1000);
  }
  const byKey = {};
  document.querySelectorAll("button[data-key]").forEach((b) => { byKey[b.dataset.key] = b; });
  let sent = false;
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    const typing = target && (target.tagName === "TEXTAREA" || target.tagName === "INPUT" || target.tagName === "SELECT");
    if (typing) {
      if (event.key === "Escape") target.blur();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key.toLowerCase();
    if (key === "r") {
      const r = document.getElementById("rationale");
      if (r) { event.preventDefault(); r.focus(); }
      return;
    }
    if (key === "g") { window.location.href = "/guidelines"; return; }
    const button = byKey[key];
    if (button && !sent) {
      sent = true;  // one label per key press, however fast keys repeat
      event.preventDefault();
      button.form.requestSubmit(button);
    }
  });
});
