// Live updates for the gitstage dashboard: no framework, no build step, shipped in the wheel.
// The server's event stream (live) says when something changed; the page then fetches its own
// URL's live part and swaps it in place: no reload, the filter box and the scroll stay.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var status = document.getElementById("live-status");
  if (!live || !window.fetch) {
    return;
  }
  var busy = false;
  var again = false;

  function say(text) {
    if (status && status.textContent !== text) {
      status.textContent = text;
    }
  }

  function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    fetch(window.location.href, {
      headers: { "X-Dashboard-Fragment": "live" },
      credentials: "same-origin",
      cache: "no-store",
    })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        live.innerHTML = html;
        say("updated " + new Date().toLocaleTimeString());
      })
      .catch(function () {
        say("offline: retrying");
      })
      .then(function () {
        busy = false;
        if (again) {
          again = false;
          refresh();
        }
      });
  }

  function onChange(event) {
    if (event.data !== live.getAttribute("data-generation")) {
      live.setAttribute("data-generation", event.data);
      refresh();
    }
  }

  if (window.EventSource) {
    var source = new EventSource("live");
    source.addEventListener("change", onChange);
    source.onopen = function () {
      say("live");
    };
    source.onerror = function () {
      say("reconnecting");
    };
  } else {
    window.setInterval(refresh, 5000);
    say("polling every 5 s");
  }
})();
