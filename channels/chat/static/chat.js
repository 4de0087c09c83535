// duebot web chat: posts the subscriber's text with the link's token; duebot forwards it to the assistant.
(function () {
  "use strict";
  var KEY = "duebot.chat.token";
  var STARTED = "duebot.chat.started";
  var params = new URLSearchParams(window.location.search);
  var token = params.get("t") || sessionStorage.getItem(KEY) || "";
  sessionStorage.setItem(KEY, token);
  // Keep the token out of the address bar (screenshots, shared screens); it lives in this tab only.
  if (params.has("t")) { history.replaceState(null, "", window.location.pathname); }

  var log = document.getElementById("log");
  var form = document.getElementById("composer");
  var input = document.getElementById("text");
  var send = document.getElementById("send");
  var status = document.getElementById("status");
  var choices = document.getElementById("choices");

  function add(text, who) {
    var item = document.createElement("li");
    item.className = "msg msg--" + who;
    var label = document.createElement("span");
    label.className = "visually-hidden";
    label.textContent = who === "me" ? "You said: " : who === "bot" ? "Assistant: " : "";
    item.appendChild(label);
    item.appendChild(document.createTextNode(text));  // text only: never HTML from the server
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
    send.disabled = on;
    status.textContent = on ? "The assistant is typing…" : "";
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
      return response.json().then(function (body) {
        if (!response.ok) { throw new Error(body.detail || "Something went wrong, please try again."); }
        var last = null;
        body.messages.forEach(function (m) { add(m.text, "bot"); last = m; });
        showChoices(last && last.buttons);
      });
    }).catch(function (error) {
      add(error.message || "Network problem, please try again.", "error");
    }).finally(function () {
      busy(false);
      input.focus();
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) { return; }
    input.value = "";
    say(text, text);
  });

  if (!sessionStorage.getItem(STARTED)) {
    sessionStorage.setItem(STARTED, "1");
    say("/greet");  // opens the conversation: the assistant speaks first
  }
}());
