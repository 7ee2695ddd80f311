// The dashboard works without this file; it refreshes the live parts of the page while it is open.
// A refresh changes only the nodes whose content changed (a ticking clock is one text node), so a
// text selection, an open <details> and the buttons under the pointer stay while nothing else does.
(function () {
  "use strict";
  var KEYS = ["id", "data-order", "data-attempt", "data-trade"];

  function key(node) {
    if (node.nodeType !== 1) { return ""; }
    for (var i = 0; i < KEYS.length; i++) {
      var value = node.getAttribute(KEYS[i]);
      if (value) { return KEYS[i] + "=" + value; }
    }
    return "";
  }
  function alike(live, fresh) {
    return live.nodeType === fresh.nodeType && live.nodeName === fresh.nodeName && key(live) === key(fresh);
  }
  function syncAttributes(live, fresh) {
    var i, name;
    for (i = 0; i < fresh.attributes.length; i++) {
      name = fresh.attributes[i].name;
      if (live.getAttribute(name) !== fresh.attributes[i].value) { live.setAttribute(name, fresh.attributes[i].value); }
    }
    for (i = live.attributes.length - 1; i >= 0; i--) {
      name = live.attributes[i].name;
      // whether a <details> is open is the reader's choice, not the server's
      if (name === "open" && live.nodeName === "DETAILS") { continue; }
      if (!fresh.hasAttribute(name)) { live.removeAttribute(name); }
    }
  }
  // make `live` show what `fresh` does, touching only what differs
  function morph(live, fresh) {
    if (live.nodeType !== 1) {
      if (live.nodeValue !== fresh.nodeValue) { live.nodeValue = fresh.nodeValue; }
      return;
    }
    syncAttributes(live, fresh);
    if (!live.isEqualNode(fresh)) { morphChildren(live, fresh); }
  }
  function morphChildren(live, fresh) {
    var wanted = {};
    var f, l, next;
    for (f = fresh.firstChild; f; f = f.nextSibling) { if (key(f)) { wanted[key(f)] = true; } }
    for (l = live.firstChild; l; l = next) {
      next = l.nextSibling;
      if (key(l) && !wanted[key(l)]) { live.removeChild(l); }
    }
    l = live.firstChild;
    for (f = fresh.firstChild; f; f = f.nextSibling) {
      if (key(f) && !(l && key(l) === key(f))) {
        // the keyed node may sit further on (a new row came before it)
        for (var c = l; c; c = c.nextSibling) {
          if (alike(c, f)) { live.insertBefore(c, l); l = c; break; }
        }
      }
      if (l && alike(l, f)) {
        morph(l, f);
        l = l.nextSibling;
      } else {
        live.insertBefore(document.importNode(f, true), l);
      }
    }
    while (l) { next = l.nextSibling; live.removeChild(l); l = next; }
  }

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
          if (fresh[i]) { morph(el, fresh[i]); }
        });
      })
      .catch(function () { /* try again next time */ })
      .then(function () { busy = false; });
  }
  setInterval(refresh, 2000);
})();
