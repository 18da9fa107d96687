// tqrun dashboard: refresh the live section, and replay dead letters with the bearer token.
// The page is complete without this file; it only adds refresh and the authenticated replay.
(function () {
  "use strict";
  var base = document.body.getAttribute("data-base") || "";
  var REFRESH_MS = 5000;

  function tokenInput() { return document.getElementById("token"); }

  function rememberToken() {
    var input = tokenInput();
    if (input && !input.value) { input.value = sessionStorage.getItem("tqrun-token") || ""; }
  }

  function refresh() {
    if (document.hidden || document.activeElement === tokenInput()) { return; }
    fetch(window.location.href, {headers: {"Accept": "text/html"}}).then(function (r) {
      return r.text();
    }).then(function (html) {
      var doc = new DOMParser().parseFromString(html, "text/html");
      var fresh = doc.getElementById("live");
      var live = document.getElementById("live");
      var token = tokenInput() ? tokenInput().value : "";
      var result = document.getElementById("replay-result");
      var message = result ? result.textContent : "";
      if (fresh && live) {
        live.innerHTML = fresh.innerHTML;
        if (tokenInput()) { tokenInput().value = token; }
        var r2 = document.getElementById("replay-result");
        if (r2) { r2.textContent = message; }
      }
    }).catch(function () { /* keep the last page; the next tick retries */ });
  }

  function replay(queue) {
    var input = tokenInput();
    var token = input ? input.value.trim() : "";
    var out = document.getElementById("replay-result");
    if (token) { sessionStorage.setItem("tqrun-token", token); }
    fetch(base + "/api/dlq/" + encodeURIComponent(queue) + "/replay", {
      method: "POST",
      headers: {"Authorization": "Bearer " + token, "Content-Type": "application/json"},
      body: "{}"
    }).then(function (r) {
      return r.json().then(function (body) { return {status: r.status, body: body}; });
    }).then(function (res) {
      if (out) {
        out.textContent = res.status === 200
          ? "replayed " + res.body.replayed + " job(s) from " + queue
          : "replay refused (" + res.status + "): " + res.body.error;
        out.setAttribute("data-status", String(res.status));
      }
      refresh();
    });
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (target && target.getAttribute && target.getAttribute("data-replay")) {
      event.preventDefault();
      replay(target.getAttribute("data-replay"));
    }
  });
  rememberToken();
  setInterval(refresh, REFRESH_MS);
}());
