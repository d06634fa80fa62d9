// Scanning a set back in without losing a scan (progressive enhancement).
//
// A handheld scanner types a code and Enter, item after item, faster than a page reloads.
// Without this file each scan posts the form and reloads the page, and whatever the scanner
// types during the reload is lost. With it, each scan is queued the moment Enter is pressed,
// the field is cleared for the next one at once, and the queue is posted in order in the
// background. Each scan is answered with a little JSON (what to announce, and the progress),
// so the badge and bar move at once; the lists (still out, back) are fetched once the queue
// is empty, not after every scan. A refused scan is announced and the queue goes on. The
// server does all the checking, exactly as without JavaScript.
(() => {
  const form = document.querySelector("form[data-scan-queue]");
  if (!form || !window.fetch || !window.DOMParser) return;
  const code = form.querySelector("[data-scan]");
  const status = document.getElementById("scan-queue-status");
  const problems = document.getElementById("scan-queue-problems");
  const queue = [];
  let busy = false;
  let stale = null; // the page to fetch the lists from, once the queue is empty
  let finished = null; // the finished set's page, once the last item is back

  const say = (text) => { if (status) status.textContent = text; };

  // The page's camera (scan-camera.js), if it has one: each code it reads is scanned as if typed.
  const camera = document.getElementById("camera-scan");
  // A scan that did not get through may be read again by the camera (it ignores codes it has read).
  const forget = (scanned) => camera?.dispatchEvent(new CustomEvent("camera-forget", { detail: scanned }));

  // The asset tag in what a scanner typed (a label's URL or a bare tag), to match answers to scans.
  const tagOf = (scanned) => scanned.replace(/\s+/g, "").toUpperCase().split(/[/?\\]/).filter(Boolean).pop() || "";

  const problem = (text, scanned = "") => {
    if (!problems) return;
    const item = document.createElement("li");
    item.textContent = text;
    item.dataset.tag = tagOf(scanned);
    problems.prepend(item);
    problems.closest("[hidden]")?.removeAttribute("hidden");
  };

  // An item checked in after all (scanned again once the reason was put right): it is no longer a problem.
  const solved = (tag) => {
    if (!problems) return;
    for (const item of [...problems.children]) if (item.dataset.tag === tag) item.remove();
    if (!problems.children.length) problems.closest(".error-summary")?.setAttribute("hidden", "");
  };

  // Each item comes back as it went out unless a grade is chosen for it: a chosen grade goes with
  // the next scan only, then the choice goes back to "As it went out" (the empty value).
  const resetGrade = () => {
    const asItWentOut = form.querySelector('input[name=grade][value=""]');
    if (asItWentOut) asItWentOut.checked = true;
  };

  // The badge and bar from a scan's answer, without waiting for the page.
  const showProgress = (answer) => {
    const badge = document.getElementById("progress");
    if (badge) badge.textContent = answer.summary;
    const bar = document.querySelector("progress[data-live-part]");
    if (bar) {
      bar.max = answer.total;
      bar.value = answer.back + answer.lost;
      bar.textContent = answer.summary;
    }
  };

  // Replace each live part of this page by the same part of the server's page.
  const replaceLiveParts = (fresh) => {
    for (const part of document.querySelectorAll("[data-live-part]")) {
      const replacement = fresh.querySelector(`[data-live-part="${part.dataset.livePart}"]`);
      if (replacement) part.replaceWith(document.importNode(replacement, true));
      else part.replaceChildren();
    }
    // The page's own confirmations ("Report missing?") on the new buttons.
    for (const button of document.querySelectorAll("[data-live-part] [data-confirm]")) {
      button.addEventListener("click", (event) => {
        if (!window.confirm(button.dataset.confirm)) event.preventDefault();
      });
    }
  };

  // Fetch the check-in page and take its lists. If that fails they stay as they are: the
  // badge is already right, and the next scan tries again.
  const refresh = async (url, stay = false) => {
    let response;
    try {
      response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
    } catch (error) {
      return;
    }
    if (!response.ok || response.redirected) return; // an error or the sign-in page: not this page
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    if (!fresh.querySelector("form[data-scan-queue]") && !stay) {
      window.location.assign(url); // the set was finished meanwhile (another device): show it
      return;
    }
    replaceLiveParts(fresh);
  };

  // Why a scan was not answered with JSON: the session ended (the sign-in page), or an error page
  // that is not the app's (a proxy's, say: the app's own error answers are JSON too).
  const unanswered = (response) => {
    if (response.redirected) return "you are signed out. Reload the page to sign in, then scan it again.";
    if (response.status >= 500) return `the server had a problem (${response.status}). Scan it again.`;
    return `the page may be out of date (${response.status}). Reload it, then scan it again.`;
  };

  // Why a scan answered in JSON was not checked in. The scan's own refusals name the field at
  // fault (or null) and say what was wrong with the scan; the app's error answers (an expired
  // form, no access, too many attempts, a server problem) name none: the scan was not looked at.
  const refused = (answer, response) => {
    if (!answer.message) return `refused (${response.status})`;
    return "field" in answer ? answer.message : `not checked in: ${answer.message}`;
  };

  // Post one scan; its answer, or null when the problem has been reported.
  const send = async (data) => {
    const scanned = String(data.get("code") || "").trim();
    say(`Sending ${scanned}${queue.length ? ` (${queue.length} more waiting)` : ""}…`);
    let response;
    try {
      response = await fetch(form.action, {
        method: "POST", body: data, credentials: "same-origin", headers: { Accept: "application/json" },
      });
    } catch (error) {
      problem(`${scanned}: not sent (no connection to the server). Scan it again.`, scanned);
      forget(scanned);
      return null;
    }
    const isJson = (response.headers.get("Content-Type") || "").startsWith("application/json");
    const answer = isJson ? await response.json().catch(() => null) : null;
    if (!answer) {
      say("");
      problem(`${scanned}: not checked in: ${unanswered(response)}`, scanned);
      forget(scanned);
      return null;
    }
    if (!answer.ok) {
      say("");
      problem(`${scanned}: ${refused(answer, response)}`, scanned);
      return answer;
    }
    solved(answer.tag);
    showProgress(answer);
    say(answer.message);
    stale = answer.page;
    return answer;
  };

  // Everything is back. With nothing refused, show the finished set's page. Otherwise stay, so the
  // scans that were not checked in (a stray instrument of another set, say) stay listed, with a link.
  const finish = () => {
    if (!problems || !problems.children.length) {
      window.location.assign(finished);
      return;
    }
    refresh(finished, true); // the lists (still out, back) as they are now, staying on this page
    if (!status) return;
    status.textContent = "Everything is back. The scans listed below were not checked in. ";
    const link = document.createElement("a");
    link.href = finished;
    link.textContent = "Open the finished set";
    status.append(link);
  };

  const drain = async () => {
    if (busy) return;
    busy = true;
    try {
      while (queue.length) {
        const answer = await send(queue.shift());
        if (answer?.complete) finished = answer.page; // scans still queued are sent (and refused) first
        if (!queue.length && stale && !finished) {
          const url = stale;
          stale = null;
          await refresh(url); // scans queued meanwhile are sent after it, then refresh again
        }
      }
      if (finished) finish();
    } finally {
      busy = false;
    }
  };

  // A damaged item needs its note before it is sent (the server would refuse it, and the box and
  // note would be cleared for the next scan).
  const needsNote = () => form.elements.damaged?.checked && form.elements.note && !form.elements.note.value.trim();

  // Queue the scan in the box with the grade, damage and note chosen for it; false if it must wait.
  const enqueue = (focus) => {
    if (needsNote()) {
      waiting();
      form.elements.note.focus();
      return false;
    }
    queue.push(new FormData(form));
    waitOver();
    // Ready for the next scan at once; a grade, damage and note chosen belong to the item just scanned.
    code.value = "";
    resetGrade();
    for (const box of form.querySelectorAll("input[type=checkbox]")) box.checked = false;
    if (form.elements.note) form.elements.note.value = "";
    if (focus) code.focus(); // not after a camera scan: on a phone, focus opens the keyboard
    drain();
    takeHeld();
    return true;
  };

  // Camera scans read while a scan waited in the box go next, in the order read.
  const held = [];
  const takeHeld = () => {
    while (held.length && !code.value.trim()) {
      code.value = held.shift();
      if (!enqueue(false)) return;
    }
  };
  code.addEventListener("input", () => { if (!code.value.trim()) takeHeld(); });
  // What waits for the person, on its own line: the queue's announcements do not replace it.
  const waitLine = document.getElementById("scan-waiting");
  const waiting = () => {
    const more = held.length ? ` (${held.length} more scan${held.length === 1 ? "" : "s"} waiting)` : "";
    const tag = tagOf(code.value); // the tag, not the whole URL a label's code holds
    const text = needsNote() ? `Describe the damage of ${tag} in the note, then press Check in${more}.`
      : `${tag} is waiting in the box: press Check in${more}.`;
    if (!waitLine) return say(text);
    waitLine.textContent = text;
    waitLine.hidden = false;
  };
  const waitOver = () => {
    if (!waitLine) return;
    waitLine.hidden = true;
    waitLine.textContent = "";
  };

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!code.value.trim()) {
      code.focus();
      return;
    }
    enqueue(true);
  });

  camera?.addEventListener("camera-code", (event) => {
    const scanned = event.detail.code;
    if (code.value.trim()) {
      // A scan is waiting in the box (for its damage note, say): it goes first, this one after it.
      held.push(scanned);
      waiting();
      return;
    }
    code.value = scanned;
    enqueue(false);
  });
})();
