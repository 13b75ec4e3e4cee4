// Shared by every page: the clinic's formats for scripts (window.clinicFormat), and quick
// period choices next to a report's dates.
window.clinicFormat = (function () {
  "use strict";

  // A Russian number as people read it (+7 916 123-45-67), as the server's pages show it;
  // anything else as it came.
  function phone(raw) {
    var text = String(raw);
    var d = text.replace(/\D/g, "");
    if (d.length === 11 && (d[0] === "7" || d[0] === "8")) { d = d.slice(1); }
    if (d.length !== 10 || text.length > 20) { return text; }
    return "+7\u00a0" + d.slice(0, 3) + "\u00a0" + d.slice(3, 6) + "-" + d.slice(6, 8) + "-" +
      d.slice(8);
  }

  return { phone: phone };
})();

// Every page: quick period choices next to the period's dates (today, 7 days, 30 days, this
// month). They fill the two date fields and show the report; the fields stay for any period.
(function () {
  "use strict";

  function iso(d) {
    var m = d.getMonth() + 1, day = d.getDate();
    return d.getFullYear() + "-" + (m < 10 ? "0" : "") + m + "-" + (day < 10 ? "0" : "") + day;
  }

  function daysAgo(n) {
    var d = new Date();
    d.setDate(d.getDate() - n);
    return d;
  }

  var CHOICES = [
    ["Сегодня", function () { return [new Date(), new Date()]; }],
    ["Вчера", function () { return [daysAgo(1), daysAgo(1)]; }],
    ["7 дней", function () { return [daysAgo(6), new Date()]; }],
    ["30 дней", function () { return [daysAgo(29), new Date()]; }],
    ["Этот месяц", function () {
      var now = new Date();
      return [new Date(now.getFullYear(), now.getMonth(), 1), now];
    }]
  ];

  document.querySelectorAll("form.period-form").forEach(function (form) {
    var from = form.querySelector("input[name=from]");
    var to = form.querySelector("input[name=to]");
    if (!from || !to) { return; }
    var box = document.createElement("div");
    box.className = "quick-periods";
    box.setAttribute("role", "group");
    box.setAttribute("aria-label", "Быстрый выбор периода");
    CHOICES.forEach(function (choice) {
      var range = choice[1]();
      var button = document.createElement("button");
      button.type = "button";
      button.className = "btn-chip";
      button.textContent = choice[0];
      if (from.value === iso(range[0]) && to.value === iso(range[1])) {
        button.setAttribute("aria-pressed", "true");
      }
      button.addEventListener("click", function () {
        from.value = iso(range[0]);
        to.value = iso(range[1]);
        form.requestSubmit ? form.requestSubmit() : form.submit();
      });
      box.appendChild(button);
    });
    form.appendChild(box);
  });
})();
