// Supervisor pages: the live view of today's calls (calls ringing and in progress, and calls
// as they end) and the dashboard's charts. Values go on the page with textContent only.

// The dashboard's charts (Chart.js, vendored): inbound calls by day and by hour of the day.
(function () {
  "use strict";

  var source = document.getElementById("chart-data");
  if (!source || typeof Chart === "undefined") { return; }  // no chart: the tables stay
  var data = JSON.parse(source.textContent);
  var SERIES = [
    ["answered", "Отвечено", "#24415f"],
    ["missed", "Пропущено", "#c9a400"],
    ["abandoned", "Брошено в очереди", "#b00020"],
    ["ivr_abandoned", "Потеряно до очереди", "#8a94a6"]
  ];

  function draw(canvasId, series, xTitle, kinds, yTitle) {
    var canvas = document.getElementById(canvasId);
    if (!canvas) { return null; }
    canvas.parentElement.hidden = false;
    return new Chart(canvas, {
      type: "bar",
      data: {
        labels: series.labels,
        datasets: kinds.map(function (s) {
          return { label: s[1], data: series[s[0]], backgroundColor: s[2], stack: s[3] || "calls" };
        })
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: {
          x: { stacked: true, title: { display: true, text: xTitle } },
          y: { stacked: true, beginAtZero: true, ticks: { precision: 0 },
               title: { display: true, text: yTitle } }
        },
        plugins: { legend: { position: "bottom" } }
      }
    });
  }

  // Per administrator: calls answered and rings missed side by side with the callbacks made.
  var AGENT_SERIES = [
    ["answered", "Ответил(а)", "#24415f", "inbound"],
    ["missed", "Пропустил(а) звонок", "#c9a400", "inbound"],
    ["callbacks", "Перезвонил(а)", "#2a8f3c", "callbacks"]
  ];

  window.dashboardCharts = {
    byDay: draw("chart-by-day", data.by_day, "День", SERIES, "Входящих звонков"),
    byHour: draw("chart-by-hour", data.by_hour, "Час", SERIES, "Входящих звонков"),
    agents: draw("chart-agents", data.agents, "Администратор (доб.)", AGENT_SERIES, "Звонков")
  };
  document.querySelectorAll(".chart-fallback").forEach(function (el) { el.hidden = true; });
})();

// Today's calls, live.
(function () {
  "use strict";

  var live = document.getElementById("live");
  if (!live) { return; }
  var ended = document.getElementById("ended");
  var empty = document.getElementById("live-empty");
  var conn = document.getElementById("conn");
  var calls = {};
  var DISPOSITION_LABELS = {
    answered: "отвечен", abandoned: "брошен в очереди", queue_timeout: "пропущен (очередь)",
    ivr_abandoned: "брошен в меню", no_answer: "пропущен", busy: "занято", failed: "ошибка",
    outbound_answered: "исходящий, отвечен", outbound_failed: "исходящий, не дозвонились"
  };

  function setConn(state, text) {
    conn.dataset.state = state;
    conn.className = "conn conn-" + state;
    conn.textContent = text;
  }

  function row(linkedid) {
    var li = calls[linkedid];
    if (!li) {
      li = document.createElement("li");
      li.dataset.linkedid = linkedid;
      li.dataset.agents = "";
      calls[linkedid] = li;
      live.prepend(li);
    }
    empty.hidden = true;
    return li;
  }

  function describe(li) {
    li.textContent = (li.dataset.caller ? window.clinicFormat.phone(li.dataset.caller) : "номер скрыт") +
      (li.dataset.name ? " (" + li.dataset.name + ")" : "") + " — " + li.dataset.status;
  }

  var socket = io("/supervisor", { reconnectionDelayMax: 5000 });
  setConn("connecting", "подключение…");
  socket.on("connect", function () { setConn("up", "на связи"); });
  socket.on("disconnect", function () { setConn("down", "нет связи, переподключение…"); });
  socket.on("connect_error", function () { setConn("down", "нет связи, переподключение…"); });
  socket.on("link_state", function (d) {
    if (!d.up) { setConn("warn", "АТС недоступна"); } else if (socket.connected) { setConn("up", "на связи"); }
  });
  socket.on("call_started", function (d) {
    var li = row(d.linkedid);
    li.dataset.caller = d.caller || "";
    li.dataset.name = d.caller_name || "";
    li.dataset.status = "поступил";
    describe(li);
  });
  socket.on("call_ringing", function (d) {
    var li = row(d.linkedid);
    li.dataset.caller = d.caller || li.dataset.caller || "";
    li.dataset.name = d.caller_name || li.dataset.name || "";
    var agents = li.dataset.agents ? li.dataset.agents.split(",") : [];
    if (agents.indexOf(d.agent) < 0) { agents.push(d.agent); }
    li.dataset.agents = agents.join(",");
    li.dataset.status = "звонит: " + agents.join(", ");
    describe(li);
  });
  socket.on("call_answered", function (d) {
    var li = row(d.linkedid);
    li.dataset.status = "разговор" + (d.agent ? " с " + d.agent : "");
    describe(li);
  });
  socket.on("call_ended", function (d) {
    var li = calls[d.linkedid];
    if (li) { li.remove(); delete calls[d.linkedid]; }
    empty.hidden = live.children.length > 0;
    var done = document.createElement("li");
    done.dataset.linkedid = d.linkedid;
    done.dataset.disposition = d.disposition;
    // The call's page: timeline, recording, transcript (stored a moment after it ends).
    var link = document.createElement("a");
    link.href = "/supervisor/calls/" + encodeURIComponent(d.linkedid);
    link.textContent = (d.caller ? window.clinicFormat.phone(d.caller) : "номер скрыт") + " — " +
      (DISPOSITION_LABELS[d.disposition] || d.disposition) +
      (d.agent ? ", " + d.agent : "") + ", разговор " + Math.round(d.talk_s || 0) + " с";
    done.appendChild(link);
    ended.prepend(done);
  });
})();
