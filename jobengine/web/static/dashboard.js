// jobengine dashboard: the Live toggle (refresh every 2 s while the tab is visible) and
// "select all" for bulk actions. No inline scripts: the Content-Security-Policy forbids them.
(function () {
  "use strict";
  var INTERVAL = 2000;
  var KEY = "jobengine.live";

  function toggle() {
    return document.getElementById("live");
  }

  function isLive() {
    var box = toggle();
    return Boolean(box && box.checked) && document.visibilityState === "visible";
  }

  function busy(element) {
    // A table with ticked boxes, or an open confirmation, is left alone, so a refresh never
    // drops a selection or a question waiting for its answer.
    return (
      element.querySelector("input[name=job]:checked") !== null ||
      element.querySelector("[data-holds-live]") !== null
    );
  }

  function refresh() {
    if (!isLive() || typeof htmx === "undefined") {
      return;
    }
    document.querySelectorAll("[data-live]").forEach(function (element) {
      if (!busy(element) && !element.classList.contains("htmx-request")) {
        htmx.trigger(element, "refresh");
      }
    });
  }

  function setUp() {
    var box = toggle();
    if (box) {
      box.checked = window.localStorage.getItem(KEY) !== "off";
      box.addEventListener("change", function () {
        window.localStorage.setItem(KEY, box.checked ? "on" : "off");
        refresh();
      });
    }
    document.addEventListener("visibilitychange", refresh);
    document.body.addEventListener("change", function (event) {
      var target = event.target;
      if (target && target.matches && target.matches("[data-select-all]")) {
        var form = target.closest("form");
        form.querySelectorAll("input[name=job]").forEach(function (box) {
          box.checked = target.checked;
        });
      }
    });
    window.setInterval(refresh, INTERVAL);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setUp);
  } else {
    setUp();
  }
})();
