// Operator panel: screen pops over Socket.IO. Every value from the server is put on the page
// with textContent, never innerHTML: a caller name or a note may contain markup.
(function () {
  "use strict";

  var pops = document.getElementById("pops");
  var idle = document.getElementById("idle");
  var conn = document.getElementById("conn");
  var template = document.getElementById("pop-template");
  var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");

  var STATE_LABELS = { ringing: "Звонит", live: "Разговор", ended: "Звонок завершён" };
  var SEGMENT_LABELS = { sleeping: "спящие", dropped: "сорвавшиеся", dms: "ДМС" };
  var CONSENT_LABELS = { pd: "Обработка ПД", marketing: "Реклама", do_not_call: "Не звонить" };
  var REASON_LABELS = {
    missed_call: "пропущенный", abandoned_call: "брошенный", no_show: "не пришёл",
    sleeping: "спящий", nps_followup: "опрос", objection_followup: "возражение"
  };
  var DISPOSITION_LABELS = {
    answered: "отвечен", abandoned: "брошен в очереди", queue_timeout: "пропущен",
    ivr_abandoned: "брошен в меню", no_answer: "пропущен", busy: "занято", failed: "ошибка",
    outbound_answered: "исходящий, отвечен", outbound_failed: "исходящий, не дозвонились"
  };

  function setConn(state, text) {
    conn.dataset.state = state;
    conn.className = "conn conn-" + state;
    conn.textContent = text;
  }

  function fmtDate(iso) {
    if (!iso) { return ""; }
    var d = new Date(iso);
    return isNaN(d) ? String(iso) : d.toLocaleString("ru-RU");
  }

  function yesNo(v) {
    return v === true ? "да" : v === false ? "нет" : "неизвестно";
  }

  function fillList(ul, items, toText) {
    ul.replaceChildren();
    items.forEach(function (item) {
      var li = document.createElement("li");
      li.textContent = toText(item);
      ul.appendChild(li);
    });
    ul.closest("section").hidden = items.length === 0;
  }

  function findPop(linkedid) {
    var all = pops.querySelectorAll("article.pop");
    for (var i = 0; i < all.length; i++) {
      if (all[i].dataset.linkedid === linkedid) { return all[i]; }
    }
    return null;
  }

  function updateIdle() {
    idle.hidden = pops.querySelector("article.pop") !== null;
  }

  function renderScript(box, script) {
    var section = box.closest("section");
    box.replaceChildren();
    if (!script) { section.hidden = true; return; }
    section.hidden = false;
    if (typeof script === "string") { box.textContent = script; return; }
    if (script.title) {
      var h = document.createElement("strong");
      h.textContent = String(script.title);
      box.appendChild(h);
    }
    var lines = script.lines || script.steps || [];
    if (lines.length) {
      var ol = document.createElement("ol");
      lines.forEach(function (line) {
        var li = document.createElement("li");
        li.textContent = typeof line === "string" ? line : (line.text || JSON.stringify(line));
        ol.appendChild(li);
      });
      box.appendChild(ol);
    }
    var objections = script.objections || [];
    if (objections.length) {
      var dl = document.createElement("dl");
      dl.className = "objections";
      objections.forEach(function (o) {
        var dt = document.createElement("dt");
        dt.textContent = "«" + o.title + "»" + (o.shortcut ? " (" + o.shortcut + ")" : "");
        var dd = document.createElement("dd");
        dd.textContent = o.answer;
        dl.appendChild(dt);
        dl.appendChild(dd);
      });
      box.appendChild(dl);
    }
  }

  function render(pop) {
    var el = findPop(pop.linkedid);
    if (!el) {
      el = template.content.firstElementChild.cloneNode(true);
      el.dataset.linkedid = pop.linkedid;
      wireForm(el);
      pops.prepend(el);
    }
    var card = pop.card || {};
    var patient = card.patient || null;
    el.dataset.state = pop.state;
    el.querySelector(".state").textContent = STATE_LABELS[pop.state] || pop.state;
    el.querySelector(".name").textContent =
      (patient && patient.full_name) || pop.caller_name || "Новый звонящий";
    el.querySelector(".phone").textContent = card.phone || pop.caller || "номер скрыт";

    var visit = card.last_visit;
    var visitText = "";
    if (visit) {
      visitText = [visit.date, visit.doctor, visit.service].filter(Boolean).join(" · ");
      if (card.months_since_visit != null) {
        visitText += " (" + card.months_since_visit + " мес. назад)";
      }
    }
    el.querySelector(".visit").textContent = visitText;
    el.querySelector(".card-visit").hidden = !visit;

    fillList(el.querySelector(".segments"), card.segments || [], function (s) {
      return SEGMENT_LABELS[s] || String(s);
    });
    var consent = card.consent || null;
    fillList(el.querySelector(".consent"), consent ? Object.keys(CONSENT_LABELS) : [], function (k) {
      return CONSENT_LABELS[k] + ": " + yesNo(consent[k]);
    });
    fillList(el.querySelector(".notes"), card.notes || [], function (n) {
      return [n.text, n.author, fmtDate(n.created_at)].filter(Boolean).join(" — ");
    });
    fillList(el.querySelector(".tasks"), card.open_tasks || [], function (t) {
      return (REASON_LABELS[t.reason] || t.reason) + ", до " + fmtDate(t.due_at) +
        ", попыток: " + t.attempts;
    });
    fillList(el.querySelector(".calls"), card.recent_calls || [], function (c) {
      var when = c.start_ts ? new Date(c.start_ts * 1000).toLocaleString("ru-RU") : "";
      return when + " · " + (DISPOSITION_LABELS[c.disposition] || c.disposition) +
        (c.agent ? " · доб. " + c.agent : "");
    });
    renderScript(el.querySelector(".script"), pop.script);

    var form = el.querySelector("form.outcome");
    form.elements.linkedid.value = pop.linkedid;
    form.hidden = !(pop.state === "live" || pop.state === "ended");
    updateIdle();
  }

  function withdraw(linkedid) {
    var el = findPop(linkedid);
    if (el) { el.remove(); }
    updateIdle();
  }

  function chooseOutcome(form, value) {
    form.elements.outcome.value = value;
    form.querySelectorAll("[data-outcome]").forEach(function (b) {
      b.classList.toggle("chosen", b.dataset.outcome === value);
    });
    form.querySelector(".detail-date").hidden = value !== "booked";
    form.querySelector(".detail-time").hidden = value !== "callback_requested";
  }

  function wireForm(el) {
    var form = el.querySelector("form.outcome");
    form.querySelectorAll("[data-outcome]").forEach(function (b) {
      b.addEventListener("click", function () { chooseOutcome(form, b.dataset.outcome); });
    });
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      submitOutcome(form, el);
    });
  }

  function submitOutcome(form, el) {
    var error = form.querySelector(".form-error");
    if (!form.elements.outcome.value) {
      error.textContent = "Выберите итог звонка (клавиши 1–5).";
      return;
    }
    error.textContent = "";
    fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      headers: { "X-CSRF-Token": csrf, "Accept": "application/json" },
      credentials: "same-origin"
    }).then(function (resp) {
      return resp.json().then(function (body) { return { ok: resp.ok, body: body }; });
    }).then(function (r) {
      if (r.ok) {
        el.remove();
        updateIdle();
      } else {
        error.textContent = (r.body && r.body.message) || "Не сохранено.";
      }
    }).catch(function () {
      error.textContent = "Нет связи с сервером: не сохранено.";
    });
  }

  function activeForm() {
    var forms = pops.querySelectorAll("form.outcome");
    for (var i = 0; i < forms.length; i++) {
      if (!forms[i].hidden) { return forms[i]; }
    }
    return null;
  }

  document.addEventListener("keydown", function (ev) {
    var form = activeForm();
    if (!form) { return; }
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      form.requestSubmit();
      return;
    }
    var tag = (ev.target && ev.target.tagName) || "";
    if (tag === "INPUT" || tag === "TEXTAREA" || ev.ctrlKey || ev.altKey || ev.metaKey) { return; }
    var button = form.querySelector('[data-key="' + ev.key + '"]');
    if (button) {
      ev.preventDefault();
      chooseOutcome(form, button.dataset.outcome);
    }
  });

  // The client reconnects by itself (growing delays); each connect re-syncs the live pops.
  var socket = io("/operator", { reconnectionDelayMax: 5000 });
  setConn("down", "подключение…");
  socket.on("connect", function () {
    setConn("up", "на связи");
    socket.emit("sync", {}, function (reply) {
      var live = {};
      (reply && reply.pops || []).forEach(function (p) { live[p.linkedid] = true; render(p); });
      pops.querySelectorAll("article.pop").forEach(function (el) {
        if (!live[el.dataset.linkedid] && el.dataset.state === "ringing") { el.remove(); }
      });
      updateIdle();
    });
  });
  socket.on("disconnect", function () { setConn("down", "нет связи, переподключение…"); });
  socket.on("connect_error", function () { setConn("down", "нет связи, переподключение…"); });
  // Desktop notification when the panel's tab is in the background. Browsers allow
  // Notification only on https:// or localhost pages, and only after the user agreed.
  var notifyButton = document.getElementById("notify-enable");
  function canNotify() { return "Notification" in window && Notification.permission === "granted"; }
  function updateNotifyButton() {
    if (!notifyButton) { return; }
    notifyButton.hidden = !("Notification" in window) || Notification.permission !== "default";
  }
  if (notifyButton) {
    notifyButton.addEventListener("click", function () {
      Notification.requestPermission().then(updateNotifyButton);
    });
  }
  updateNotifyButton();
  var notified = {};
  function notifyRinging(pop) {
    if (pop.state !== "ringing" || !document.hidden || !canNotify() || notified[pop.linkedid]) {
      return;
    }
    notified[pop.linkedid] = true;
    var patient = (pop.card && pop.card.patient) || null;
    var who = (patient && patient.full_name) || pop.caller_name || pop.caller || "Новый звонящий";
    var note = new Notification("Звонок: " + who, { body: pop.caller || "", tag: pop.linkedid });
    note.onclick = function () { window.focus(); note.close(); };
  }
  socket.on("pop", function (pop) { render(pop); notifyRinging(pop); });
  socket.on("pop_withdrawn", function (data) { withdraw(data.linkedid); });
  socket.on("link_state", function (data) {
    if (!data.up) { setConn("warn", "АТС недоступна"); } else if (socket.connected) { setConn("up", "на связи"); }
  });
  updateIdle();
})();
