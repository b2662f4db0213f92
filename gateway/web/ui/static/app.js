// hookgate dashboard: what is live. Job data is only ever written with textContent.
"use strict";

function localTimes(root) {
  for (const node of root.querySelectorAll("time[datetime]")) {
    const when = new Date(node.getAttribute("datetime"));
    if (isNaN(when)) continue;
    const seconds = Math.round((Date.now() - when) / 1000);
    const ago = seconds < 60 ? `${seconds}s ago` : seconds < 3600 ? `${Math.round(seconds / 60)}m ago`
      : seconds < 86400 ? `${Math.round(seconds / 3600)}h ago` : `${Math.round(seconds / 86400)}d ago`;
    node.textContent = `${when.toLocaleString()} (${ago})`;
  }
}

function liveList(box) {
  const events = new EventSource(box.dataset.liveList);
  let latest = 0; // two changes close together: the answer to the older fetch may come last
  const refresh = async () => {
    const mine = ++latest;
    const url = new URL(location.href);
    url.searchParams.set("fragment", "1");
    const answer = await fetch(url, { credentials: "same-origin" });
    if (!answer.ok) return;
    const html = await answer.text();
    if (mine !== latest) return; // a newer fetch is on its way
    box.innerHTML = html; // rendered and escaped by the server
    localTimes(box);
  };
  // Once open (and after each reconnect) the stream tells every change, but not one made while
  // it was connecting: the list is fetched again then.
  events.addEventListener("open", refresh);
  events.addEventListener("changed", refresh);
}

function liveRun(box) {
  const events = new EventSource(box.dataset.liveRun);
  const field = (name) => box.querySelector(`[data-field="${name}"]`);
  events.addEventListener("job", (message) => {
    const job = JSON.parse(message.data);
    const state = field("state");
    state.textContent = job.state;
    state.className = `state ${job.state}`;
    if ("logs" in job) field("logs").textContent = job.logs || ""; // finished: its logs whole
    field("outcome-title").textContent = job.error ? "Error" : "Result";
    const finished = ["succeeded", "failed", "cancelled"].includes(job.state);
    const outcome = job.error || job.result;
    field("outcome").textContent = outcome == null && !finished ? "not finished yet" : JSON.stringify(outcome, null, 2);
    for (const step of job.steps || []) {
      const cell = box.querySelector(`[data-step="${CSS.escape(step.id)}"] [data-field="step-state"]`);
      if (cell) { cell.textContent = step.state; cell.className = `state ${step.state}`; }
    }
    if (finished) {
      for (const form of box.querySelectorAll("[data-hide-when-done]")) form.remove();
      events.close();
    }
  });
  // The first chunks hold all the output so far: they replace what the page was rendered with.
  // A reconnect sends Last-Event-ID, and then only what is new.
  let fresh = true;
  events.addEventListener("log", (message) => {
    const logs = field("logs");
    if (fresh) { logs.textContent = ""; fresh = false; }
    logs.textContent += JSON.parse(message.data).text;
  });
}

function liveOperation(box) {
  const events = new EventSource(box.dataset.liveOperation);
  const field = (name) => box.querySelector(`[data-field="${name}"]`);
  events.addEventListener("operation", (message) => {
    const op = JSON.parse(message.data);
    field("state").textContent = op.state;
    field("state").className = `state ${op.state}`;
    for (const name of ["done", "failed", "matched"]) field(name).textContent = String(op[name]);
    const bar = field("progress");
    bar.max = Math.max(op.matched, 1);
    bar.value = op.done + op.failed;
    if (op.state !== "running") {
      for (const form of box.querySelectorAll("[data-hide-when-done]")) form.remove();
      events.close();
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  localTimes(document);
  const list = document.querySelector("[data-live-list]");
  if (list) liveList(list);
  const run = document.querySelector("[data-live-run]");
  if (run) liveRun(run);
  const operation = document.querySelector("[data-live-operation]");
  if (operation) liveOperation(operation);
});
