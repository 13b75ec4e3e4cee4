// The playbook editor: a placeholder button inserts «{name}» at the cursor of the script text.
(function () {
  "use strict";
  const area = document.getElementById("script-text");
  if (!area) {
    return;
  }
  document.querySelectorAll(".insert-placeholder").forEach(function (button) {
    button.addEventListener("click", function () {
      const text = button.dataset.placeholder;
      const start = area.selectionStart;
      const end = area.selectionEnd;
      area.value = area.value.slice(0, start) + text + area.value.slice(end);
      area.focus();
      area.selectionStart = area.selectionEnd = start + text.length;
    });
  });
  // An error names its line: clicking it selects that line in the text.
  document.querySelectorAll("#script-problems li[data-line]").forEach(function (item) {
    item.style.cursor = "pointer";
    item.addEventListener("click", function () {
      const number = parseInt(item.dataset.line, 10);
      const lines = area.value.split("\n");
      let start = 0;
      for (let i = 0; i < number - 1 && i < lines.length; i += 1) {
        start += lines[i].length + 1;
      }
      area.focus();
      area.setSelectionRange(start, start + (lines[number - 1] || "").length);
    });
  });
})();
