// Progressive enhancement only: every page works without it.
// 1. [data-refresh] sections re-fetch their fragment (live campaign progress);
// 2. forms with [data-confirm] ask first.
(function () {
  "use strict";
  document.querySelectorAll("[data-refresh]").forEach(function (section) {
    var url = section.getAttribute("data-refresh");
    var every = parseInt(section.getAttribute("data-every") || "2000", 10);
    setInterval(function () {
      if (document.hidden) return;
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          var target = section.querySelector("#progress");
          if (html && target) target.outerHTML = html;
        })
        .catch(function () { /* keep the last figures; the next tick tries again */ });
    }, every);
  });
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
    });
  });
})();
