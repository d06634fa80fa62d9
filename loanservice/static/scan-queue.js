// Scanning a set back in without losing a scan (progressive enhancement).
//
// A handheld scanner types a code and Enter, item after item, faster than a page reloads.
// Without this file each scan posts the form and reloads the page, and whatever the scanner
// types during the reload is lost. With it, each scan is queued the moment Enter is pressed,
// the field is cleared for the next one at once, and the queue is posted in order in the
// background. After each answer the parts of the page that show progress (marked
// data-live-part) are replaced by the server's fresh copy; a refused scan is announced and
// the queue goes on. The server does all the checking, exactly as without JavaScript.
(() => {
  const form = document.querySelector("form[data-scan-queue]");
  if (!form || !window.fetch || !window.DOMParser) return;
  const code = form.querySelector("[data-scan]");
  const status = document.getElementById("scan-queue-status");
  const problems = document.getElementById("scan-queue-problems");
  const queue = [];
  let busy = false;

  const say = (text) => { if (status) status.textContent = text; };

  const problem = (text) => {
    if (!problems) return;
    const item = document.createElement("li");
    item.textContent = text;
    problems.prepend(item);
    problems.closest("[hidden]")?.removeAttribute("hidden");
  };

  // Replace each live part of this page by the same part of the server's page.
  const refresh = (fresh) => {
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

  const errorText = (fresh) => {
    const summary = fresh.querySelector(".error-summary:not([hidden])");
    const items = summary ? Array.from(summary.querySelectorAll("li"), (li) => li.textContent.trim()) : [];
    return items.join(" ") || (summary ? summary.textContent.trim() : "");
  };

  const send = async (data) => {
    const scanned = String(data.get("code") || "").trim();
    say(`Sending ${scanned}${queue.length ? ` (${queue.length} more waiting)` : ""}…`);
    let response;
    try {
      response = await fetch(form.action, { method: "POST", body: data, credentials: "same-origin" });
    } catch (error) {
      problem(`${scanned}: not sent (no connection to the server). Scan it again.`);
      return;
    }
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    if (!fresh.querySelector("form[data-scan-queue]") && response.ok) {
      // The set is complete (or the page changed shape): show the server's page as it is.
      window.location.assign(response.url);
      return;
    }
    refresh(fresh);
    say(fresh.querySelector(".flash")?.textContent.trim() || "");
    if (!response.ok) {
      problem(`${scanned}: ${errorText(fresh) || `refused (${response.status})`}`);
    }
  };

  const drain = async () => {
    if (busy) return;
    busy = true;
    while (queue.length) await send(queue.shift());
    busy = false;
  };

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!code.value.trim()) {
      code.focus();
      return;
    }
    queue.push(new FormData(form));
    // Ready for the next scan at once; a damage note belongs to the item just scanned.
    code.value = "";
    for (const box of form.querySelectorAll("input[type=checkbox]")) box.checked = false;
    if (form.elements.note) form.elements.note.value = "";
    code.focus();
    drain();
  });
})();
