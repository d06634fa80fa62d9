// Progressive enhancement only: every page works without this file.
document.addEventListener("DOMContentLoaded", () => {
  // The main menu folds behind a Menu button on a phone (the CSS shows the button only there).
  // Without this script the button stays hidden and the list open.
  const menuButton = document.querySelector(".menu-button");
  const menu = menuButton && document.getElementById(menuButton.getAttribute("aria-controls"));
  if (menu) {
    const setOpen = (open) => {
      menuButton.setAttribute("aria-expanded", String(open));
      menu.classList.toggle("closed", !open);
    };
    menuButton.hidden = false;
    setOpen(false);
    menuButton.addEventListener("click", () => setOpen(menuButton.getAttribute("aria-expanded") !== "true"));
    menu.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && getComputedStyle(menuButton).display !== "none") {
        setOpen(false);
        menuButton.focus();
      }
    });
  }
  // On the instrument form, offer only the sizes the chosen type comes in.
  const holder = document.querySelector("[data-type-sizes]");
  const typeSelect = document.getElementById("type_id");
  const sizeSelect = document.getElementById("size");
  if (holder && typeSelect && sizeSelect) {
    const sizesByType = JSON.parse(holder.dataset.typeSizes);
    const allOptions = Array.from(sizeSelect.options).map((o) => [o.value, o.text]);
    const refresh = () => {
      const sizes = sizesByType[typeSelect.value] || [];
      const current = sizeSelect.value;
      sizeSelect.innerHTML = "";
      // A type with sizes needs one chosen on purpose: no silent first size.
      const wanted = sizes.length
        ? [["", "Choose a size"], ...allOptions.filter(([v]) => sizes.includes(v))]
        : [["", "(one size)"]];
      for (const [value, text] of wanted) sizeSelect.add(new Option(text, value, false, value === current));
    };
    typeSelect.addEventListener("change", refresh);
    if (typeSelect.value && typeSelect.value !== "0") refresh();
  }
  // Move focus to an error summary so screen readers and keyboards land on it, except on
  // scanning pages: a handheld scanner types into whatever has focus, so the scan field
  // keeps it (its text selected, so the next scan replaces it); the summary is an alert.
  const scanField = document.querySelector("[data-scan]");
  const summary = document.querySelector(".error-summary");
  if (scanField) {
    scanField.focus();
    scanField.select();
  } else if (summary) {
    summary.focus();
  }
  // Ask before a one-click action that is hard to undo.
  for (const button of document.querySelectorAll("[data-confirm]")) {
    button.addEventListener("click", (event) => {
      if (!window.confirm(button.dataset.confirm)) event.preventDefault();
    });
  }
  // Filters folded away on a phone are opened on a wider screen, where there is room for them.
  for (const fold of document.querySelectorAll("details[data-open-wide]")) {
    if (window.matchMedia("(min-width: 641px)").matches) fold.open = true;
  }
  // "Tick every instrument on this page": shown only with this script (without it, tick them one by one).
  const bindSelectAll = (root) => {
    for (const all of root.querySelectorAll("[data-select-all]")) {
      all.closest("label").hidden = false;
      all.addEventListener("change", () => {
        for (const box of all.form.querySelectorAll("input[type=checkbox][name=tag]")) {
          box.checked = all.checked;
        }
      });
    }
  };
  bindSelectAll(document);
  // Search as you type swaps the results in: bind their controls again.
  document.body.addEventListener("htmx:afterSwap", (event) => bindSelectAll(event.detail.elt.parentElement || document));
});
