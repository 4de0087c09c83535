// duebot web chat: posts the subscriber's text with the link's token; duebot forwards it to the assistant.
(function () {
  "use strict";
  var KEY = "duebot.chat.token";
  var STARTED = "duebot.chat.started";
  var LANG = "duebot.chat.lang";
  var params = new URLSearchParams(window.location.search);
  var token = params.get("t") || sessionStorage.getItem(KEY) || "";
  sessionStorage.setItem(KEY, token);

  // The page's words in each language (the server chose one: ?lang=, else the browser's languages).
  var STRINGS = JSON.parse(document.getElementById("chat-strings").textContent);
  var lang = document.documentElement.lang in STRINGS ? document.documentElement.lang : "en";
  if (!params.has("lang") && sessionStorage.getItem(LANG) in STRINGS) { lang = sessionStorage.getItem(LANG); }
  function s(key) { return (STRINGS[lang] || STRINGS.en)[key] || STRINGS.en[key] || ""; }

  // Keep the token out of the address bar (screenshots, shared screens); it lives in this tab only.
  function address() {
    return window.location.pathname + (params.has("lang") || sessionStorage.getItem(LANG) ? "?lang=" + lang : "");
  }
  if (params.has("t")) { history.replaceState(null, "", address()); }

  var log = document.getElementById("log");
  var form = document.getElementById("composer");
  var input = document.getElementById("text");
  var send = document.getElementById("send");
  var status = document.getElementById("status");
  var choices = document.getElementById("choices");
  var typing = false;

  function translate() {
    document.documentElement.lang = lang;
    document.title = s("title");
    document.querySelectorAll("[data-i18n]").forEach(function (el) { el.textContent = s(el.getAttribute("data-i18n")); });
    document.querySelectorAll("[data-i18n-placeholder]").forEach(function (el) {
      el.setAttribute("placeholder", s(el.getAttribute("data-i18n-placeholder")));
    });
    document.querySelectorAll("[data-i18n-aria-label]").forEach(function (el) {
      el.setAttribute("aria-label", s(el.getAttribute("data-i18n-aria-label")));
    });
    document.querySelectorAll("[data-lang]").forEach(function (button) {
      button.setAttribute("aria-pressed", button.getAttribute("data-lang") === lang ? "true" : "false");
    });
    if (typing) { status.textContent = s("typing"); }
  }

  document.querySelectorAll("[data-lang]").forEach(function (button) {
    button.addEventListener("click", function () {
      lang = button.getAttribute("data-lang");
      sessionStorage.setItem(LANG, lang);
      history.replaceState(null, "", address());
      translate();  // in place: the conversation so far stays on the page
    });
  });

  function add(text, who) {
    var item = document.createElement("li");
    item.className = "msg msg--" + who;
    var label = document.createElement("span");
    label.className = "visually-hidden";
    if (who === "me" || who === "bot") { label.setAttribute("data-i18n", who === "me" ? "you_said" : "assistant_said"); }
    label.textContent = who === "me" ? s("you_said") : who === "bot" ? s("assistant_said") : "";
    item.appendChild(label);
    item.appendChild(document.createTextNode(text));  // text only: never HTML from the server
    log.appendChild(item);
    item.scrollIntoView({block: "end"});
  }

  // What went wrong, in the page's language (the server's own words are English).
  function problem(code) {
    var item = document.createElement("li");
    item.className = "msg msg--error";
    item.setAttribute("data-i18n", code);
    item.setAttribute("data-testid", "chat-" + code);
    item.textContent = s(code);
    log.appendChild(item);
    item.scrollIntoView({block: "end"});
  }

  function showChoices(buttons) {
    choices.textContent = "";
    (buttons || []).forEach(function (b) {
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = b.title;
      button.addEventListener("click", function () { say(b.payload, b.title); });
      choices.appendChild(button);
    });
  }

  function busy(on) {
    typing = on;
    send.disabled = on;
    status.textContent = on ? s("typing") : "";
  }

  function say(text, shown) {
    if (shown) { add(shown, "me"); }
    busy(true);
    showChoices([]);
    return fetch("/chat/api/message", {
      method: "POST",
      headers: {"Content-Type": "application/json", "Authorization": "Bearer " + token},
      body: JSON.stringify({text: text})
    }).then(function (response) {
      if (!response.ok) {
        var code = response.status === 403 ? "closed" : response.status === 429 ? "too_fast"
          : response.status === 503 ? "unavailable" : "error";
        problem(code);
        if (code === "closed") { input.disabled = true; send.disabled = true; }
        return;
      }
      return response.json().then(function (body) {
        var last = null;
        body.messages.forEach(function (m) { add(m.text, "bot"); last = m; });
        showChoices(last && last.buttons);
      });
    }).catch(function () {
      problem("network");
    }).finally(function () {
      var closed = input.disabled;
      busy(false);
      if (closed) { send.disabled = true; } else { input.focus(); }
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) { return; }
    input.value = "";
    say(text, text);
  });

  translate();
  if (!sessionStorage.getItem(STARTED)) {
    sessionStorage.setItem(STARTED, "1");
    say("/greet");  // opens the conversation: the assistant speaks first
  }
}());
