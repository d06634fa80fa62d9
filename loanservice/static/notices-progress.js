// A background run's progress (the notices run, the invoice run): poll the job's JSON and update the page;
// reload it when the run ends (the server-rendered page then shows the outcome). Without JavaScript a
// <meta> refresh does it. The box says what the run counts (data-unit) and what it is doing (data-doing).
(function () {
  "use strict";
  var box = document.getElementById("notices-run") || document.getElementById("job-run");
  if (!box || box.dataset.finished === "yes") return;
  var status = document.getElementById("run-status");
  var bar = document.getElementById("run-progress");
  var unit = box.dataset.unit || "letters";
  var doing = box.dataset.doing || "Sending";
  var preparing = box.dataset.preparing || "Working out which notices are due…";

  function show(run) {
    if (run.finished) { window.location.reload(); return; }
    if (run.state === "queued") status.textContent = "Waiting for a worker to start the run…";
    else if (run.total === null) status.textContent = preparing;
    else {
      status.textContent = doing + ": " + run.done + " of " + run.total + " " + unit + " done.";
      bar.max = Math.max(run.total, 1);
      bar.value = run.done;
      bar.textContent = run.done + " of " + run.total;
    }
  }

  function poll() {
    fetch(box.dataset.poll, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (run) { if (run) show(run); if (!run || !run.finished) setTimeout(poll, 1000); })
      .catch(function () { setTimeout(poll, 3000); });
  }
  setTimeout(poll, 1000);
})();
