// The live wallboard: callers waiting (with their wait ticking), administrators' states and
// today's figures. The server sends the whole board on connect and after every change; the
// page only adds the seconds elapsed since it arrived. Values go on the page as textContent.
(function () {
  "use strict";

  var STATUS = JSON.parse(document.getElementById("status-labels").textContent);
  var conn = document.getElementById("conn");
  var linkDown = document.getElementById("link-down");
  var alertBox = document.getElementById("sl-alert");
  var waitingTable = document.getElementById("waiting");
  var waitingBody = waitingTable.querySelector("tbody");
  var waitingEmpty = document.getElementById("waiting-empty");
  var waitingCount = document.getElementById("waiting-count");
  var operatorsList = document.getElementById("operators");
  var operatorsEmpty = document.getElementById("operators-empty");
  var threshold = document.getElementById("threshold");
  var board = null;
  var receivedAt = 0;

  function setConn(state, text) {
    conn.dataset.state = state;
    conn.className = "conn conn-" + state;
    conn.textContent = text;
  }

  function elapsed() { return (Date.now() - receivedAt) / 1000; }

  function clock(seconds) {
    var s = Math.max(0, Math.floor(seconds));
    var m = Math.floor(s / 60);
    var r = s % 60;
    return m + ":" + (r < 10 ? "0" : "") + r;
  }

  function cell(tr, text, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) { td.className = cls; }
    tr.appendChild(td);
    return td;
  }

  function renderWaiting() {
    waitingBody.textContent = "";
    board.waiting.forEach(function (w) {
      var tr = document.createElement("tr");
      tr.dataset.linkedid = w.linkedid;
      tr.dataset.wait = String(w.wait_s);
      cell(tr, w.caller ? window.clinicFormat.phone(w.caller) : "номер скрыт", "caller");
      cell(tr, w.caller_name || "");
      cell(tr, w.queue || "—");
      cell(tr, w.ringing.length ? w.ringing.join(", ") : "—", "ringing");
      cell(tr, "", "wait");
      waitingBody.appendChild(tr);
    });
    waitingCount.textContent = String(board.waiting.length);
    waitingTable.hidden = board.waiting.length === 0;
    waitingEmpty.hidden = board.waiting.length > 0;
  }

  function renderOperators() {
    operatorsList.textContent = "";
    board.operators.forEach(function (op) {
      var li = document.createElement("li");
      li.dataset.agent = op.agent;
      li.dataset.status = op.status;
      li.dataset.since = String(op.state_s);
      if (op.wrap_left_s !== null) { li.dataset.wrapLeft = String(op.wrap_left_s); }
      var name = document.createElement("span");
      name.className = "op-name";
      name.textContent = op.agent + (op.agent_name ? " · " + op.agent_name : "");
      var status = document.createElement("span");
      status.className = "op-status";
      status.textContent = STATUS[op.status] || op.status;
      var time = document.createElement("span");
      time.className = "op-time";
      li.appendChild(name);
      li.appendChild(status);
      li.appendChild(time);
      operatorsList.appendChild(li);
    });
    operatorsEmpty.hidden = board.operators.length > 0;
  }

  function percent(value) {
    return value === null || value === undefined ? "—" : (value * 100).toFixed(1).replace(".", ",") + " %";
  }

  function renderToday() {
    var today = board.today;
    // A listener in another process (REDIS_URL) may not know the clinic's day: its boards
    // come without figures, and the ones this page has stay.
    if (!today) { return; }
    document.querySelectorAll("#today [data-figure]").forEach(function (dd) {
      var key = dd.dataset.figure;
      var value = today[key];
      if (key === "service_level") {
        dd.textContent = percent(value);
      } else if (key === "avg_queue_wait_s") {
        dd.textContent = value === null ? "—" : value.toFixed(1).replace(".", ",");
      } else {
        dd.textContent = String(value);
      }
    });
  }

  // Every second: the waits and the time in each state go on; the alert follows the waits.
  function tick() {
    if (!board) { return; }
    var late = 0;
    var limit = board.threshold_s;
    var dt = elapsed();
    waitingBody.querySelectorAll("tr").forEach(function (tr) {
      var wait = parseFloat(tr.dataset.wait) + dt;
      tr.querySelector(".wait").textContent = clock(wait);
      var over = wait > limit;
      tr.classList.toggle("over", over);
      tr.dataset.over = over ? "1" : "0";
      if (over) { late += 1; }
    });
    operatorsList.querySelectorAll("li").forEach(function (li) {
      var text = null;
      if (li.dataset.status === "wrap_up" && li.dataset.wrapLeft !== undefined) {
        var left = parseFloat(li.dataset.wrapLeft) - dt;
        if (left <= 0) {
          // Asterisk sends nothing when wrap-up ends: the administrator is free again, since
          // the moment the wrap-up ended.
          li.dataset.status = "free";
          li.dataset.since = String(-parseFloat(li.dataset.wrapLeft));
          li.querySelector(".op-status").textContent = STATUS.free;
          delete li.dataset.wrapLeft;
        } else {
          text = "ещё " + Math.ceil(left) + " с";
        }
      }
      li.querySelector(".op-time").textContent = text || clock(parseFloat(li.dataset.since) + dt);
    });
    alertBox.dataset.count = String(late);
    alertBox.hidden = late === 0;
    if (late) {
      alertBox.textContent = "Внимание: " + late + " звонящ" + (late % 10 === 1 && late % 100 !== 11 ? "ий ждёт" : "их ждут") +
        " дольше " + Math.round(limit) + " с";
    }
  }

  function apply(next) {
    board = next;
    receivedAt = Date.now();
    threshold.textContent = String(Math.round(board.threshold_s));
    linkDown.hidden = board.link.up !== false;
    renderWaiting();
    renderOperators();
    renderToday();
    tick();
  }

  apply(JSON.parse(document.getElementById("board-data").textContent));
  setInterval(tick, 1000);

  var socket = io("/supervisor", { auth: { board: 1 }, reconnectionDelayMax: 5000 });
  setConn("connecting", "подключение…");
  socket.on("connect", function () { setConn("up", "на связи"); });
  socket.on("disconnect", function () { setConn("down", "нет связи, переподключение…"); });
  socket.on("connect_error", function () { setConn("down", "нет связи, переподключение…"); });
  socket.on("board", apply);
})();

// Full screen for the TV in the hall: the board alone, larger figures; Esc leaves.
(function () {
  "use strict";

  var button = document.getElementById("fullscreen");
  var board = document.getElementById("wallboard-page");
  if (!button || !board || !document.fullscreenEnabled) { return; }
  button.hidden = false;
  button.addEventListener("click", function () { board.requestFullscreen(); });
})();
