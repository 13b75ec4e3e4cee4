// The call page: a click (or Enter) on a transcript word plays the recording from that word;
// the word being heard is highlighted as the audio plays.
(function () {
  "use strict";

  var player = document.getElementById("player");
  var transcript = document.getElementById("transcript");
  if (!player) { return; }
  player.addEventListener("error", function () {
    // The route said 404 (file gone since the page was built) or the format is not playable.
    var note = document.createElement("p");
    note.className = "warning";
    note.id = "player-error";
    note.textContent = "Не удалось загрузить или воспроизвести запись.";
    player.parentElement.appendChild(note);
  });
  if (!transcript) { return; }
  var words = Array.prototype.slice.call(transcript.querySelectorAll(".word"));
  var starts = words.map(function (w) { return parseFloat(w.dataset.start); });
  var current = null;

  function seek(word) {
    player.currentTime = parseFloat(word.dataset.start);
    var playing = player.play();
    // Autoplay rules may refuse to start the sound; the position is set all the same.
    if (playing && playing.catch) { playing.catch(function () {}); }
  }

  transcript.addEventListener("click", function (event) {
    var word = event.target.closest(".word");
    if (word) { seek(word); }
  });
  transcript.addEventListener("keydown", function (event) {
    var word = event.target.closest(".word");
    if (word && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      seek(word);
    }
  });

  player.addEventListener("timeupdate", function () {
    var t = player.currentTime;
    var index = -1;
    for (var i = 0; i < starts.length && starts[i] <= t + 0.01; i++) { index = i; }
    var word = index >= 0 ? words[index] : null;
    if (word === current) { return; }
    if (current) { current.classList.remove("current"); }
    if (word) { word.classList.add("current"); }
    current = word;
  });
})();
