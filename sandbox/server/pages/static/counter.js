// The counter page works without this file; it adds the countdown, live status and the automatic return.
(function () {
  "use strict";
  var root = document.querySelector("[data-status-url]");
  if (!root) { return; }
  var shown = root.getAttribute("data-status");
  var remaining = Number(root.getAttribute("data-remaining"));
  var open = root.getAttribute("data-open") === "1";
  var countdown = document.querySelector("[data-countdown]");

  function two(n) { return (n < 10 ? "0" : "") + n; }
  function clock(s) {
    s = Math.max(0, Math.floor(s));
    return Math.floor(s / 3600) + ":" + two(Math.floor(s % 3600 / 60)) + ":" + two(s % 60);
  }
  function reloadClean() {
    // the one-off parts of the URL (the step just run, a refusal) no longer describe the page
    var url = new URL(window.location.href);
    ["ran", "mode", "notify", "after", "card", "refused"].forEach(function (k) { url.searchParams.delete(k); });
    window.location.replace(url.toString());
  }
  // once the payer submits a form, the answer to that form is what the page shows next
  var leaving = false;
  document.addEventListener("submit", function () { leaving = true; });
  window.addEventListener("pagehide", function () { leaving = true; });
  var polling = false;
  function poll() {
    if (polling || leaving) { return; }
    polling = true;
    fetch(root.getAttribute("data-status-url"), { cache: "no-store", credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        if (!s || leaving) { return; }
        remaining = s.remaining_seconds;
        if (String(s.order_status) !== shown) { reloadClean(); }
      })
      .catch(function () { /* the next poll tries again */ })
      .then(function () { polling = false; });
  }
  if (open && countdown) {
    setInterval(function () {
      remaining -= 1;
      countdown.textContent = clock(remaining);
      if (remaining <= 0) { poll(); }
    }, 1000);
  }
  setInterval(poll, open ? 1000 : 3000);

  var redirect = document.querySelector("[data-redirect-url]");
  if (redirect) {
    var left = Number(redirect.getAttribute("data-redirect-seconds"));
    var label = redirect.querySelector("[data-n]");
    var go = function () { window.location.href = redirect.getAttribute("data-redirect-url"); };
    if (left <= 0) { go(); return; }
    var timer = setInterval(function () {
      left -= 1;
      if (label) { label.textContent = String(Math.max(0, left)); }
      if (left <= 0) { clearInterval(timer); go(); }
    }, 1000);
  }
})();
