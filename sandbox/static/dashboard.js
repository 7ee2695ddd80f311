// The dashboard works without this file; it refreshes the live parts of the page while it is open.
(function () {
  "use strict";
  var busy = false;
  function refresh() {
    if (busy || document.hidden) { return; }
    var active = document.activeElement;
    if (active && active.matches && active.matches("input, select, textarea")) { return; }
    busy = true;
    fetch(window.location.href, { cache: "no-store", credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelectorAll("[data-live]");
        document.querySelectorAll("[data-live]").forEach(function (el, i) {
          if (!fresh[i] || fresh[i].innerHTML === el.innerHTML) { return; }
          var open = Array.prototype.map.call(el.querySelectorAll("details[open][id]"), function (d) { return d.id; });
          el.innerHTML = fresh[i].innerHTML;
          open.forEach(function (id) { var d = document.getElementById(id); if (d) { d.open = true; } });
        });
      })
      .catch(function () { /* try again next time */ })
      .then(function () { busy = false; });
  }
  setInterval(refresh, 2000);
})();
