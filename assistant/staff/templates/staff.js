// The staff console's only script: keeps the count of open requests and the
// list fresh without a reload. It asks the JSON summary every 10 s; when a new
// request has arrived it fetches the list again (same filters), unless staff are
// typing in it. No third-party code; served under the console's CSP.
(function () {
  "use strict";
  var POLL_MS = 10000;
  var list = document.getElementById("requests");
  var badge = document.getElementById("open-count");
  var baseTitle = document.title.replace(/^\(\d+\) /, "");

  function busy() {
    if (!list) return true;
    if (list.contains(document.activeElement)) return true;
    var notes = list.querySelectorAll("input[name=note]");
    for (var i = 0; i < notes.length; i++) if (notes[i].value) return true;
    return list.querySelector("details[open]") !== null;
  }

  function refreshList() {
    fetch(list.dataset.rows + window.location.search, {credentials: "same-origin"})
      .then(function (reply) { return reply.ok ? reply.text() : Promise.reject(reply.status); })
      .then(function (html) { if (!busy()) list.innerHTML = html; })
      .catch(function () {});
  }

  function poll() {
    var url = list ? list.dataset.summary : "/staff/api/summary";
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (reply) {
        if (reply.status === 401) { window.location.assign("/staff/signin"); return null; }
        return reply.ok ? reply.json() : null;
      })
      .then(function (summary) {
        if (!summary) return;
        if (badge) badge.textContent = String(summary.open);
        document.title = (summary.open ? "(" + summary.open + ") " : "") + baseTitle;
        if (list && summary.latest > Number(list.dataset.latest) && !busy()) {
          list.dataset.latest = String(summary.latest);
          refreshList();
        }
      })
      .catch(function () {});
  }

  window.setInterval(poll, POLL_MS);
})();
