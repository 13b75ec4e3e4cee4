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

  function two(n) { return (n < 10 ? "0" : "") + n; }

  // The clinic's formats: dd.mm.yyyy HH:MM for moments, dd.mm.yyyy for dates.
  function fmtMoment(d) {
    return two(d.getDate()) + "." + two(d.getMonth() + 1) + "." + d.getFullYear() + " " +
      two(d.getHours()) + ":" + two(d.getMinutes());
  }

  function fmtDate(iso) {
    if (!iso) { return ""; }
    var d = new Date(iso);
    return isNaN(d) ? String(iso) : fmtMoment(d);
  }

  function fmtDay(iso) {
    var m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(String(iso || ""));
    return m ? m[3] + "." + m[2] + "." + m[1] : String(iso || "");
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
      var wrap = document.createElement("div");
      wrap.className = "objections";
      var buttons = document.createElement("div");
      buttons.className = "objection-buttons";
      wrap.appendChild(buttons);
      objections.forEach(function (o) {
        // The playbook's key N becomes Shift+N: the bare digits are the outcome buttons'.
        var key = o.shortcut ? String(o.shortcut) : "";
        var b = document.createElement("button");
        b.type = "button";
        b.className = "objection";
        b.dataset.objection = o.key;
        b.dataset.shortcut = key;
        if (key) {
          var kbd = document.createElement("kbd");
          kbd.textContent = "Shift+" + key.toUpperCase();
          b.appendChild(kbd);
          b.appendChild(document.createTextNode(" "));
          b.title = "Клавиши Shift+" + key.toUpperCase();
        }
        b.appendChild(document.createTextNode("«" + o.title + "»"));
        var answer = document.createElement("p");
        answer.className = "objection-answer";
        answer.dataset.objection = o.key;
        answer.textContent = o.answer;
        answer.hidden = true;
        b.addEventListener("click", function () { showObjection(wrap, o.key); });
        buttons.appendChild(b);
        wrap.appendChild(answer);
      });
      box.appendChild(wrap);
    }
  }

  function showObjection(wrap, key) {
    wrap.querySelectorAll(".objection-answer").forEach(function (p) {
      p.hidden = p.dataset.objection !== key || !p.hidden;
    });
    wrap.querySelectorAll("button.objection").forEach(function (b) {
      var answer = wrap.querySelector('.objection-answer[data-objection="' + b.dataset.objection + '"]');
      b.classList.toggle("chosen", !!answer && !answer.hidden);
    });
  }

  var lastPop = {};
  var reported = {};

  // Tell the server a known patient's card is on this screen (the audit log of who saw whom).
  function reportOpened(pop) {
    var patient = pop.card && pop.card.patient;
    if (!patient || !patient.id) { return; }
    var key = pop.linkedid + ":" + patient.id;
    if (reported[key]) { return; }
    reported[key] = true;
    post(pops.dataset.openedUrl, { linkedid: pop.linkedid }).catch(function () {});
  }

  function render(pop) {
    lastPop[pop.linkedid] = pop;
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
    el.dataset.phone = card.phone || "";
    el.querySelector(".call-this").hidden = !card.phone;
    var create = el.querySelector("form.quick-create");
    // An unknown caller whose number we know: the operator can create the patient now.
    var canCreate = !patient && !!card.phone;
    if (canCreate && create.hidden) {
      create.elements.phone.value = card.phone;
      create.elements.linkedid.value = pop.linkedid;
    }
    create.hidden = !canCreate;

    var visit = card.last_visit;
    var visitText = "";
    if (visit) {
      visitText = [fmtDay(visit.date), visit.doctor, visit.service].filter(Boolean).join(" · ");
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
      var when = c.start_ts ? fmtMoment(new Date(c.start_ts * 1000)) : "";
      return when + " · " + (DISPOSITION_LABELS[c.disposition] || c.disposition) +
        (c.agent ? " · доб. " + c.agent : "");
    });
    renderScript(el.querySelector(".script"), pop.script);

    var form = el.querySelector("form.outcome");
    form.elements.linkedid.value = pop.linkedid;
    form.hidden = !(pop.state === "live" || pop.state === "ended");
    updateIdle();
    reportOpened(pop);
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
      b.setAttribute("aria-pressed", b.dataset.outcome === value ? "true" : "false");
    });
    form.querySelector(".detail-date").hidden = value !== "booked";
    form.querySelector(".detail-time").hidden = value !== "callback_requested";
  }

  function wireForm(el) {
    var create = el.querySelector("form.quick-create");
    create.addEventListener("submit", function (ev) {
      ev.preventDefault();
      createPatient(create, el);
    });
    el.querySelector(".call-this").addEventListener("click", function () {
      clickToCall(el.dataset.phone, el.querySelector(".call-error"));
    });
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
    var outcome = form.elements.outcome.value;
    if (outcome === "booked" && !form.elements.date.value) {
      error.textContent = "Укажите дату записи.";
      form.elements.date.focus();
      return;
    }
    if (outcome === "callback_requested" && !form.elements.time.value) {
      error.textContent = "Укажите, когда перезвонить.";
      form.elements.time.focus();
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
        error.textContent = failText(r, "Итог не сохранён: проверьте выбор и дату.");
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

  // The card whose objection answers the keys open: the live call first, else the newest.
  function activeScript() {
    var live = pops.querySelector('article.pop[data-state="live"] .objections');
    return live || pops.querySelector("article.pop .objections");
  }

  function isTyping(target) {
    if (!target || !target.tagName) { return false; }
    var tag = target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable;
  }

  function objectionFor(wrap, ev) {
    var buttons = wrap.querySelectorAll("button.objection");
    for (var i = 0; i < buttons.length; i++) {
      var key = buttons[i].dataset.shortcut || "";
      if (!key) { continue; }
      // ev.code, not ev.key: Shift+1 types "!" (and the layout may be Russian).
      var digit = /^[0-9]$/.test(key);
      if (digit ? (ev.code === "Digit" + key || ev.code === "Numpad" + key)
                : ev.key.toLowerCase() === key.toLowerCase()) {
        return buttons[i];
      }
    }
    return null;
  }

  document.addEventListener("keydown", function (ev) {
    var form = activeForm();
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      // Ctrl+Enter saves the form being typed in (quick create), else the call's outcome.
      var own = ev.target && ev.target.closest ? ev.target.closest("form") : null;
      var target = own && own.classList.contains("quick-create") ? own : form;
      if (target) {
        ev.preventDefault();
        target.requestSubmit();
      }
      return;
    }
    // Never steal keys from a field the operator is typing in.
    if (isTyping(ev.target) || ev.ctrlKey || ev.altKey || ev.metaKey) { return; }
    if (ev.shiftKey) {
      var wrap = activeScript();
      var objection = wrap && objectionFor(wrap, ev);
      if (objection) {
        ev.preventDefault();
        showObjection(wrap, objection.dataset.objection);
      }
      return;
    }
    if (!form) { return; }
    var button = form.querySelector('[data-key="' + ev.key + '"]');
    if (button) {
      ev.preventDefault();
      chooseOutcome(form, button.dataset.outcome);
    }
  });

  // POST a form (or fields) with the CSRF token; resolves to {ok, status, body}.
  function post(url, data) {
    var body = data instanceof FormData ? data : new FormData();
    if (!(data instanceof FormData)) {
      Object.keys(data || {}).forEach(function (k) { body.append(k, data[k]); });
    }
    return fetch(url, {
      method: "POST",
      body: body,
      headers: { "X-CSRF-Token": csrf, "Accept": "application/json" },
      credentials: "same-origin"
    }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (b) {
        return { ok: resp.ok, status: resp.status, body: b };
      });
    });
  }

  // The server's message when it is written for people (Russian); an English developer's
  // message gives way to the panel's own words.
  function failText(r, fallback) {
    var message = r.body && r.body.message;
    return message && /[а-яё]/i.test(message) ? message : fallback;
  }

  var NO_SERVER = "Нет связи с сервером: ничего не изменилось.";

  // -- unknown caller: quick create --------------------------------------------------------

  function createPatient(form, el) {
    var error = form.querySelector(".form-error");
    error.textContent = "";
    if (!form.elements.full_name.value.trim()) {
      error.textContent = "Укажите ФИО пациента.";
      form.elements.full_name.focus();
      return;
    }
    post(form.action, new FormData(form)).then(function (r) {
      if (!r.ok) { error.textContent = failText(r, "Пациент не создан."); return; }
      var linkedid = el.dataset.linkedid;
      var pop = r.body.pop || Object.assign({}, lastPop[linkedid] || { linkedid: linkedid },
        { card: r.body.card, script: r.body.script });
      render(pop);
    }).catch(function () { error.textContent = NO_SERVER; });
  }

  // -- click-to-call ---------------------------------------------------------------------

  var panelRoot = document.getElementById("callbacks");
  function clickToCall(phone, error) {
    if (!phone) { return; }
    error.textContent = "";
    post(panelRoot.dataset.callUrl, { phone: phone }).then(function (r) {
      error.textContent = r.ok ? "Звоним: сначала зазвонит ваш телефон." : failText(r, "Звонок не начат.");
      if (r.ok) { loadCallbacks(); }
    }).catch(function () { error.textContent = NO_SERVER; });
  }

  // -- my state in the queue and the pause -----------------------------------------------

  var agentBox = document.getElementById("agent");
  var agentState = document.getElementById("agent-state");
  var pauseForm = document.getElementById("pause-form");
  var pauseError = document.getElementById("pause-error");
  var pausePending = document.getElementById("pause-pending");
  var stateLabels = JSON.parse(document.getElementById("state-labels").textContent);

  var wrapTimer = null;
  function showState(state) {
    if (!state) { return; }
    agentBox.dataset.status = state.status;
    agentState.textContent = stateLabels[state.status] || state.status;
    pausePending.hidden = true;
    clearTimeout(wrapTimer);
    // Asterisk says nothing when wrap-up ends: free again after its length (a duration,
    // so the browser's clock need not agree with Asterisk's).
    if (state.status === "wrap_up" && state.until && state.ts && state.until > state.ts) {
      wrapTimer = setTimeout(function () {
        showState({ status: "free" });
      }, (state.until - state.ts) * 1000);
    }
  }

  function askPause(paused) {
    pauseError.textContent = "";
    var data = new FormData(pauseForm);
    data.append("paused", paused);
    pausePending.hidden = false;
    // The state shown changes only when Asterisk reports it (operator_state), not here.
    post(pauseForm.action, data).then(function (r) {
      if (!r.ok) {
        pausePending.hidden = true;
        pauseError.textContent = failText(r, "Команда не выполнена.");
      }
    }).catch(function () {
      pausePending.hidden = true;
      pauseError.textContent = NO_SERVER;
    });
  }
  pauseForm.querySelectorAll("button[data-paused]").forEach(function (b) {
    b.addEventListener("click", function () { askPause(b.dataset.paused); });
  });

  function refreshState() {
    fetch(agentBox.dataset.stateUrl, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (resp) { return resp.ok ? resp.json() : null; })
      .then(function (body) { if (body && body.state) { showState(body.state); } })
      .catch(function () {});
  }

  // -- the callback list -----------------------------------------------------------------

  var cbList = document.getElementById("callbacks-list");
  var cbEmpty = document.getElementById("callbacks-empty");
  var cbError = document.getElementById("callbacks-error");
  var cbCount = document.getElementById("callbacks-count");
  var cbLoadingNote = document.getElementById("callbacks-loading");
  var cbTemplate = document.getElementById("callback-template");
  var cbLabels = JSON.parse(document.getElementById("callback-labels").textContent);

  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function localInput(d) {
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" +
      pad(d.getHours()) + ":" + pad(d.getMinutes());
  }

  function renderCallback(item) {
    var li = cbTemplate.content.firstElementChild.cloneNode(true);
    li.dataset.taskId = item.task_id;
    li.dataset.status = item.status;
    li.querySelector(".cb-name").textContent = item.patient_name || "Неизвестный";
    li.querySelector(".cb-phone").textContent = item.phone;
    li.querySelector(".cb-reason").textContent = cbLabels.reasons[item.reason] || item.reason;
    li.querySelector(".cb-due").textContent =
      item.status === "dialling" ? "идёт звонок" :
      item.status === "due" ? "пора звонить" :
      item.due_at ? "к " + fmtDate(item.due_at) : "";
    li.querySelector(".cb-take").disabled = item.status === "dialling";
    li.querySelector(".cb-attempts").textContent = "попыток: " + item.attempts;
    var script = item.script;
    var box = li.querySelector(".cb-script");
    if (script) {
      var details = document.createElement("details");
      var summary = document.createElement("summary");
      summary.textContent = "Сценарий: " + (script.title || "");
      details.appendChild(summary);
      var ol = document.createElement("ol");
      (script.lines || []).forEach(function (line) {
        var l = document.createElement("li");
        l.textContent = line;
        ol.appendChild(l);
      });
      details.appendChild(ol);
      box.appendChild(details);
    } else {
      box.hidden = true;
    }
    var until = li.querySelector('input[name="until"]');
    until.value = localInput(new Date(Date.now() + 3600 * 1000));
    var error = li.querySelector(".form-error");
    var base = panelRoot.dataset.listUrl + "/" + item.task_id + "/";
    function act(action, data, done) {
      error.textContent = "";
      post(base + action, data).then(function (r) {
        if (!r.ok) { error.textContent = failText(r, "Не выполнено."); if (r.status === 409) { loadCallbacks(); } return; }
        if (done) { done(r); }
        loadCallbacks();
      }).catch(function () { error.textContent = NO_SERVER; });
    }
    li.querySelector(".cb-take").addEventListener("click", function () {
      act("take", {}, function () { cbError.textContent = "Звоним: сначала зазвонит ваш телефон."; });
    });
    li.querySelector(".cb-snooze").addEventListener("click", function () {
      var d = new Date(until.value);
      if (!until.value || isNaN(d)) { error.textContent = "Укажите, до какого времени отложить."; return; }
      act("snooze", { until: d.toISOString() });
    });
    li.querySelector(".cb-close").addEventListener("click", function () {
      act("close", { reason: li.querySelector('select[name="reason"]').value });
    });
    return li;
  }

  var cbLoading = null;
  var cbListError = null;
  function showListError(text) {
    cbListError = text;
    cbError.textContent = text;
    cbLoadingNote.hidden = true;
  }

  function loadCallbacks() {
    if (cbLoading) { cbLoading.again = true; return; }
    cbLoading = { again: false };
    fetch(panelRoot.dataset.listUrl, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (resp) { return resp.json().then(function (b) { return { ok: resp.ok, body: b }; }); })
      .then(function (r) {
        if (!r.ok) { showListError(failText(r, "Список не загружен.")); return; }
        // The list loads again: its own earlier failure is over (others' messages stay).
        if (cbListError && cbError.textContent === cbListError) { cbError.textContent = ""; }
        cbListError = null;
        cbLoadingNote.hidden = true;
        var items = r.body.items || [];
        cbList.replaceChildren.apply(cbList, items.map(renderCallback));
        cbEmpty.hidden = items.length > 0;
        cbCount.textContent = items.length ? "(" + items.length + ")" : "";
      })
      .catch(function () {
        showListError("Нет связи с сервером: список не обновлён.");
      })
      .then(function () {
        var again = cbLoading && cbLoading.again;
        cbLoading = null;
        if (again) { loadCallbacks(); }
      });
  }

  // The client reconnects by itself (growing delays); each connect re-syncs the live pops.
  var socket = io("/operator", { reconnectionDelayMax: 5000 });
  setConn("connecting", "подключение…");
  socket.on("connect", function () {
    setConn("up", "на связи");
    refreshState();
    loadCallbacks();
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
  socket.on("operator_state", function (state) { showState(state); });
  socket.on("callbacks_changed", function () { loadCallbacks(); });
  // Tasks also fall due with time and change as the dialer works: refresh once a minute too.
  setInterval(function () { if (socket.connected) { loadCallbacks(); } }, 60000);
  socket.on("link_state", function (data) {
    if (!data.up) { setConn("warn", "АТС недоступна"); } else if (socket.connected) { setConn("up", "на связи"); }
  });
  updateIdle();
})();
