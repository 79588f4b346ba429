/*
 * Dry needling assistant: the website chat widget.
 *
 * Embed with one tag:
 *   <script src="https://BOT-HOST/webchat/widget.js" defer></script>
 * It reads its settings (title, welcome, phone, emergency number, colours and
 * the starter questions on the welcome screen) from the bot's
 * /webchat/settings.json, i.e. from clinic.yml, so they can't go stale. Any
 * data- attribute overrides one: data-title, data-welcome, data-phone,
 * data-phone-e164, data-emergency, data-accent, data-accent-text.
 *
 * Plain JavaScript, no dependencies, no requests to anyone but the bot. Bot and
 * user text is always inserted as text (textContent), never as HTML. The
 * conversation (sender id, its token + transcript) lives in sessionStorage, so it
 * survives reloads and navigation within the site and ends with the browser tab.
 *
 * The bot's reply to a conversation's first message carries its token
 * (X-Conversation-Token); every later message and hand-off report sends it back,
 * and the bot refuses a known conversation without it.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || window.__dryNeedlingWidget) return;
  window.__dryNeedlingWidget = true;

  var data = script.dataset;
  var botUrl = (data.botUrl || new URL(script.src, location.href).origin).replace(/\/+$/, "");

  // The bot's settings first (a data- attribute wins); without them, defaults.
  function settingsFromBot() {
    return fetch(botUrl + "/webchat/settings.json", { credentials: "omit", referrerPolicy: "no-referrer" })
      .then(function (reply) { return reply.ok ? reply.json() : {}; })
      .catch(function () { return {}; });
  }

  function makeConfig(bot) {
    function pick(name, fallback) {
      var value = data[name] !== undefined && data[name] !== "" ? data[name] : bot[name];
      return typeof value === "string" && value ? value : fallback;
    }
    var e164 = pick("phoneE164", "");
    var starters = Array.isArray(bot.starters) ? bot.starters.filter(function (b) {
      return b && typeof b.title === "string" && typeof b.payload === "string";
    }).slice(0, 4) : [];
    return {
      webhook: botUrl + "/webhooks/website/webhook",
      handoff: botUrl + "/webhooks/website/handoff",
      feedback: botUrl + "/webhooks/website/feedback",
      stylesheet: botUrl + "/webchat/widget.css",
      title: pick("title", "Ask about dry needling"),
      welcome: pick("welcome", "Hi! Ask me anything about dry needling. My answers are general information, not medical advice."),
      phone: pick("phone", ""),
      phoneLink: e164 ? "tel:" + e164.replace(/[^+\d]/g, "") : "",
      emergency: pick("emergency", "your local emergency number"),
      accent: pick("accent", ""),
      accentText: pick("accentText", ""),
      starters: starters,
      maxLength: parseInt(data.maxLength || "1000", 10),
      timeoutMs: 30000
    };
  }

  settingsFromBot().then(function (bot) { start(makeConfig(bot || {})); });

  function start(config) {
  var STORAGE_KEY = "dry-needling-chat:" + botUrl;
  var MAX_TRANSCRIPT = 200;
  var TOKEN_HEADER = "X-Conversation-Token";
  var TOKEN_REFUSED = "conversation_token";  // the bot's error code: start a new conversation
  var TOO_MANY = "You're sending messages faster than I can answer. Please wait a moment, then try again.";

  // ---- state ------------------------------------------------------------------

  function newSender() {
    var bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);
    return "web-" + Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  function freshState() {
    // The welcome screen offers the clinic's top questions (gone once one is asked).
    return { sender: newSender(), token: null, open: false,
             transcript: [{ from: "bot", text: config.welcome, buttons: config.starters }] };
  }

  function loadState() {
    try {
      var saved = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || "null");
      if (saved && typeof saved.sender === "string" && Array.isArray(saved.transcript)) return saved;
    } catch (ignored) { /* storage disabled or corrupt: start afresh */ }
    return freshState();
  }

  function saveState() {
    state.transcript = state.transcript.slice(-MAX_TRANSCRIPT);
    try { sessionStorage.setItem(STORAGE_KEY, JSON.stringify(state)); } catch (ignored) { /* private mode */ }
  }

  var state = loadState();
  var waiting = false;

  // ---- DOM --------------------------------------------------------------------

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  var host = el("div", { id: "dry-needling-chat" });
  var root = host.attachShadow({ mode: "open" });
  root.appendChild(el("link", { rel: "stylesheet", href: config.stylesheet }));
  if (config.accent && CSS.supports("color", config.accent)) host.style.setProperty("--dnw-accent", config.accent);
  if (config.accentText && CSS.supports("color", config.accentText)) {
    host.style.setProperty("--dnw-accent-text", config.accentText);
  }

  var launcher = el("button", { type: "button", class: "launcher", "aria-expanded": "false",
                                "aria-controls": "dnw-panel" }, config.title);
  var panel = el("section", { id: "dnw-panel", class: "panel", role: "dialog", "aria-modal": "false",
                              "aria-labelledby": "dnw-title", hidden: "" });
  var header = el("div", { class: "header" });
  var title = el("h2", { id: "dnw-title" }, config.title);
  var restart = el("button", { type: "button", class: "restart" }, "New chat");
  var close = el("button", { type: "button", class: "close", "aria-label": "Close chat" }, "\u00d7");
  header.append(title, restart, close);

  var log = el("div", { class: "log", role: "log", "aria-live": "polite", "aria-relevant": "additions",
                        "aria-label": "Conversation", tabindex: "0" });
  var typing = el("div", { class: "typing", role: "status", hidden: "" });
  typing.append(el("span", { class: "dots", "aria-hidden": "true" }, "\u2022\u2022\u2022"),
                el("span", { class: "visually-hidden" }, "The assistant is typing"));

  var form = el("form", { class: "composer" });
  var label = el("label", { for: "dnw-input", class: "visually-hidden" }, "Type your question");
  var input = el("input", { id: "dnw-input", type: "text", autocomplete: "off",
                            maxlength: String(config.maxLength), placeholder: "Type your question" });
  var send = el("button", { type: "submit", class: "send" }, "Send");
  form.append(label, input, send);
  var note = el("p", { class: "note" },
                "General information, not medical advice. In an emergency call " + config.emergency + ".");

  panel.append(header, log, typing, form, note);
  root.append(launcher, panel);

  // ---- rendering --------------------------------------------------------------

  var LINK = /(https:\/\/[^\s<>"']+[^\s<>"'.,;:!?)])/g;

  function appendText(parent, text) {
    // Text with https links made clickable; everything stays text nodes.
    String(text).split(LINK).forEach(function (part, index) {
      if (index % 2 === 1) {
        parent.appendChild(el("a", { href: part, target: "_blank", rel: "noopener noreferrer" }, part));
      } else if (part) {
        parent.appendChild(document.createTextNode(part));
      }
    });
  }

  function isLink(payload) {
    return /^(tel:|https:\/\/)/.test(payload || "");
  }

  function renderButtons(buttons, latest) {
    var row = el("div", { class: "buttons" });
    buttons.forEach(function (button) {
      var titleText = String(button.title || button.payload || "");
      var payload = String(button.payload || "");
      if (isLink(payload)) {
        var link = el("a", { class: "button", href: payload }, titleText);
        if (payload.indexOf("https://") === 0) { link.target = "_blank"; link.rel = "noopener noreferrer"; }
        link.addEventListener("click", function () { reportHandoff(payload); });
        row.appendChild(link);
      } else if (latest && payload) {
        // Quick replies only make sense as answers to the latest message.
        var quick = el("button", { type: "button", class: "button" }, titleText);
        quick.addEventListener("click", function () { sendMessage(payload, titleText); });
        row.appendChild(quick);
      }
    });
    return row.childNodes.length ? row : null;
  }

  function renderEntry(entry, latest) {
    var item = el("div", { class: "message " + entry.from + (entry.error ? " error" : "") });
    var bubble = el("p", { class: "bubble" });
    bubble.appendChild(el("span", { class: "visually-hidden" }, entry.from === "user" ? "You: " : "Assistant: "));
    appendText(bubble, entry.text);
    item.appendChild(bubble);
    if (entry.error && config.phone) {
      var call = el("p", { class: "bubble" }, "You can call us on ");
      call.appendChild(config.phoneLink ? el("a", { href: config.phoneLink }, config.phone)
                                        : document.createTextNode(config.phone));
      call.appendChild(document.createTextNode("."));
      item.appendChild(call);
    }
    if (entry.retry && latest) {
      var again = el("button", { type: "button", class: "button" }, "Try again");
      again.addEventListener("click", function () { sendMessage(entry.retry, entry.retryTitle, true); });
      item.appendChild(again);
    }
    var buttons = entry.buttons && entry.buttons.length ? renderButtons(entry.buttons, latest) : null;
    if (buttons) item.appendChild(buttons);
    if (entry.rate && !entry.error) item.appendChild(renderFeedback(entry));
    return item;
  }

  // Thumbs up / down under each answer: sent to the bot, which keeps it with
  // the conversation for the clinic's report. One rating per answer; a second
  // tap changes it.
  // A thumb drawn as SVG (emoji fonts are missing on many systems); the "down"
  // button turns it over in CSS.
  var THUMB = "M1 21h4V9H1v12zm22-11c0-1.1-.9-2-2-2h-6.31l.95-4.57.03-.32c0-.41-.17-.79-.44-1.06" +
              "L14.17 1 7.59 7.59C7.22 7.95 7 8.45 7 9v10c0 1.1.9 2 2 2h9c.83 0 1.54-.5 1.84-1.22" +
              "l3.02-7.05c.09-.23.14-.47.14-.73v-2z";
  function thumbIcon() {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "18");
    svg.setAttribute("height", "18");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", THUMB);
    path.setAttribute("fill", "currentColor");
    svg.appendChild(path);
    return svg;
  }

  function renderFeedback(entry) {
    var group = el("div", { class: "feedback", role: "group", "aria-label": "Was this answer helpful?" });
    [["up", "Helpful"], ["down", "Not helpful"]].forEach(function (choice) {
      var thumb = el("button", { type: "button", class: "thumb " + choice[0], "aria-label": choice[1],
                                 "aria-pressed": String(entry.rating === choice[0]) });
      thumb.appendChild(thumbIcon());
      thumb.addEventListener("click", function () {
        if (entry.rating === choice[0]) return;
        entry.rating = choice[0];
        saveState();
        group.querySelectorAll(".thumb").forEach(function (other) {
          other.setAttribute("aria-pressed", String(other === thumb));
        });
        reportFeedback(choice[0], entry.text);
      });
      group.appendChild(thumb);
    });
    return group;
  }

  function render() {
    log.textContent = "";
    state.transcript.forEach(function (entry, index) {
      log.appendChild(renderEntry(entry, index === state.transcript.length - 1));
    });
    log.scrollTop = log.scrollHeight;
  }

  function add(entries) {
    // Append only the new entries, so screen readers announce just those; the
    // previous latest entry loses its quick replies (they answered it).
    var previous = log.lastElementChild;
    if (previous) {
      previous.querySelectorAll("button.button").forEach(function (button) { button.remove(); });
      previous.querySelectorAll(".buttons:empty").forEach(function (row) { row.remove(); });
    }
    state.transcript = state.transcript.concat(entries);
    saveState();
    entries.forEach(function (entry, index) {
      log.appendChild(renderEntry(entry, index === entries.length - 1));
    });
    log.scrollTop = log.scrollHeight;
  }

  function setWaiting(on) {
    waiting = on;
    typing.hidden = !on;
    send.disabled = on;
    if (on) log.scrollTop = log.scrollHeight;
  }

  // ---- talking to the bot -----------------------------------------------------

  function botEntries(messages) {
    return messages.filter(function (m) { return m && (m.text || (m.buttons && m.buttons.length)); })
      .map(function (m) {
        return { from: "bot", text: m.text || "", rate: Boolean(m.text && m.answer), buttons: (m.buttons || []).map(function (b) {
          return { title: String(b.title || ""), payload: String(b.payload || "") };
        }) };
      });
  }

  function failure(text, payload, shownAs) {
    return { from: "bot", error: true, text: text, retry: payload || null, retryTitle: shownAs || null };
  }

  // Tell the clinic's report that this conversation went on to call or book
  // online (the bot decides which links count). Best effort: never in the way.
  function reportHandoff(payload) {
    try {
      fetch(config.handoff, {
        method: "POST",
        keepalive: true,
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ sender: state.sender, token: state.token || null, payload: payload }),
        credentials: "omit",
        referrerPolicy: "no-referrer"
      }).catch(function () {});
    } catch (ignored) { /* an old browser without fetch keepalive */ }
  }

  function reportFeedback(rating, answer) {
    try {
      fetch(config.feedback, {
        method: "POST",
        keepalive: true,
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ sender: state.sender, token: state.token || null, rating: rating, answer: answer }),
        credentials: "omit",
        referrerPolicy: "no-referrer"
      }).catch(function () {});
    } catch (ignored) { /* best effort, like the hand-off report */ }
  }

  function post(payload, signal) {
    var body = { sender: state.sender, message: payload };
    if (state.token) body.token = state.token;
    return fetch(config.webhook, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      signal: signal,
      credentials: "omit",
      referrerPolicy: "no-referrer"
    }).then(function (reply) {
      return reply.json().catch(function () { return null; }).then(function (parsed) {
        return { reply: reply, body: parsed };
      });
    });
  }

  function sendMessage(payload, shownAs, isRetry) {
    if (waiting || !payload.trim()) return;
    if (!isRetry) add([{ from: "user", text: shownAs || payload }]);
    setWaiting(true);
    var controller = new AbortController();
    var timer = setTimeout(function () { controller.abort(); }, config.timeoutMs);
    post(payload, controller.signal).then(function (answer) {
      if (answer.reply.status === 403 && answer.body && answer.body.code === TOKEN_REFUSED) {
        // This tab's conversation is unknown to the bot without its token (e.g.
        // kept from before an update): carry on in a new one.
        state.sender = newSender();
        state.token = null;
        saveState();
        return post(payload, controller.signal);
      }
      return answer;
    }).then(function (answer) {
      var reply = answer.reply, body = answer.body;
      var token = reply.headers.get(TOKEN_HEADER);
      if (token) { state.token = token; saveState(); }
      if (reply.ok && Array.isArray(body)) {
        var entries = botEntries(body);
        add(entries.length ? entries : [{ from: "bot", text: "Sorry, I have no answer to that." }]);
      } else if (reply.status === 429) {
        add([failure(TOO_MANY, payload, shownAs)]);
      } else if (reply.status >= 400 && reply.status < 500 && body && body.error) {
        add([{ from: "bot", error: true, text: "Sorry, I couldn't take that message: " + body.error + "." }]);
      } else {
        throw new Error("bot replied " + reply.status);
      }
    }).catch(function () {
      add([failure("Sorry, I can't reach the assistant right now. Please try again in a moment.", payload, shownAs)]);
    }).then(function () {
      clearTimeout(timer);
      setWaiting(false);
    });
  }

  // ---- controls -----------------------------------------------------------------

  function setOpen(open, moveFocus) {
    state.open = open;
    saveState();
    panel.hidden = !open;
    launcher.setAttribute("aria-expanded", String(open));
    launcher.hidden = open;
    if (open) {
      render();
      if (moveFocus) input.focus();
    } else if (moveFocus) {
      launcher.focus();
    }
  }

  launcher.addEventListener("click", function () { setOpen(true, true); });
  close.addEventListener("click", function () { setOpen(false, true); });
  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape") setOpen(false, true);
  });
  restart.addEventListener("click", function () {
    state = freshState();
    state.open = true;
    saveState();
    render();
    input.focus();
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text || waiting) return;
    input.value = "";
    sendMessage(text);
    input.focus();
  });

  function mount() {
    document.body.appendChild(host);
    setOpen(Boolean(state.open), false);
  }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
  }
})();
