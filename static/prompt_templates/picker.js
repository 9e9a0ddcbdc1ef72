// Template picker: "/" in the chat composer (or the "Use a template" button in the
// studio) lists the project's templates; arrows move, Enter picks, Escape closes.
// Picking loads the template's variable form (an htmx partial); submitting it
// returns a .template-filled element whose data-fill fills the target form:
// the text, the pinned settings, and the hidden template_use field (lineage).
(() => {
  const COMMAND = /^\/([a-z0-9-]*)$/;
  const pickerOf = (el) => el?.closest?.(".template-picker") || null;
  const targetOf = (picker) => picker && document.querySelector(picker.dataset.target);
  const pickerFor = (form) => form && document.querySelector(`.template-picker[data-target="#${form.id}"]`);
  const menuOf = (picker) => picker.querySelector(".template-menu");
  const panelOf = (picker) => picker.querySelector(".template-panel");
  const options = (picker) => [...menuOf(picker).querySelectorAll(".template-option")];

  function openMenu(picker, query) {
    const menu = menuOf(picker);
    const url = `${picker.dataset.menuUrl}&q=${encodeURIComponent(query)}`;
    if (menu.dataset.url === url && !menu.hidden) return;
    menu.dataset.url = url;
    htmx.ajax("GET", url, { target: menu, swap: "innerHTML" });
  }

  function closeMenu(picker) {
    const menu = menuOf(picker);
    menu.hidden = true;
    menu.dataset.url = "";
  }

  function move(picker, step) {
    const all = options(picker);
    if (!all.length) return;
    const index = all.findIndex((o) => o.classList.contains("active"));
    all.forEach((o) => o.classList.remove("active"));
    const next = all[(index + step + all.length) % all.length];
    next.classList.add("active");
    next.scrollIntoView({ block: "nearest" });
  }

  function pick(picker, option) {
    closeMenu(picker);
    const panel = panelOf(picker);
    htmx.ajax("GET", option.dataset.useUrl, { target: panel, swap: "innerHTML" });
  }

  // Typing "/te" asks for the menu as it changes ("/", then "/te": htmx keeps the last one
  // queued behind the one in flight), so a list may arrive after the user has chosen with the
  // arrows: the new list keeps that choice.
  document.addEventListener("htmx:beforeSwap", (e) => {
    const target = e.detail.target;
    if (!target.matches?.(".template-menu")) return;
    target.dataset.active = options(pickerOf(target)).find((o) => o.classList.contains("active"))?.dataset.command || "";
  });

  // Show what was swapped in: the menu (the chosen or first option active) or the variables form (focused).
  document.addEventListener("htmx:afterSwap", (e) => {
    const target = e.detail.target;
    if (target.matches?.(".template-menu")) {
      const picker = pickerOf(target);
      if (!target.dataset.url) return; // closed while loading
      target.hidden = false;
      const all = options(picker);
      const kept = all.find((o) => o.dataset.command === target.dataset.active);
      if (!all.some((o) => o.classList.contains("active"))) (kept || all[0])?.classList.add("active");
    } else if (target.matches?.(".template-panel")) {
      target.hidden = false;
      target.querySelector("input:not([type=hidden]), textarea, select")?.focus();
    }
  });

  function fill(picker, data) {
    const form = targetOf(picker);
    if (!form) return;
    for (const [name, value] of Object.entries(data.fields)) {
      const field = form.elements.namedItem(name);
      if (field && "value" in field) field.value = value === null ? "" : String(value);
    }
    const hidden = form.elements.namedItem("template_use");
    if (hidden) hidden.value = data.template_use;
    const text = form.querySelector("textarea[name=text], textarea[name=prompt]");
    text?.focus();
  }

  // "/" at the start of an otherwise empty composer opens the menu, filtered as you type.
  document.addEventListener("input", (e) => {
    const area = e.target;
    if (!area.matches?.("textarea[name=text]")) return;
    const picker = pickerFor(area.form);
    if (!picker) return;
    const match = COMMAND.exec(area.value);
    if (match) openMenu(picker, match[1]);
    else closeMenu(picker);
  });

  // Capture phase: runs before the chat's own "Enter sends" handler.
  document.addEventListener("keydown", (e) => {
    const picker = pickerFor(e.target.form) || pickerOf(e.target);
    if (!picker || menuOf(picker).hidden) return;
    const keys = { ArrowDown: 1, ArrowUp: -1 };
    if (e.key in keys) { e.preventDefault(); move(picker, keys[e.key]); }
    else if (e.key === "Enter") {
      const active = options(picker).find((o) => o.classList.contains("active"));
      if (!active) return;
      e.preventDefault(); e.stopImmediatePropagation();
      const area = targetOf(picker)?.querySelector("textarea[name=text]");
      if (area && COMMAND.test(area.value)) area.value = "";
      pick(picker, active);
    } else if (e.key === "Escape") { e.preventDefault(); closeMenu(picker); }
  }, true);

  document.addEventListener("click", (e) => {
    const open = e.target.closest?.(".template-open");
    if (open) { const p = pickerOf(open); if (menuOf(p).hidden) openMenu(p, ""); else closeMenu(p); return; }
    const option = e.target.closest?.(".template-option");
    if (option) {
      const picker = pickerOf(option);
      const area = targetOf(picker)?.querySelector("textarea[name=text]");
      if (area && COMMAND.test(area.value)) area.value = "";
      pick(picker, option);
      return;
    }
    const cancel = e.target.closest?.(".template-cancel");
    if (cancel) { const panel = cancel.closest(".template-panel"); panel.hidden = true; panel.innerHTML = ""; return; }
    const clear = e.target.closest?.(".template-clear");
    if (clear) {
      const picker = pickerOf(clear);
      const hidden = targetOf(picker)?.elements.namedItem("template_use");
      if (hidden) hidden.value = "";
      panelOf(picker).hidden = true;
      panelOf(picker).innerHTML = "";
    }
  });

  document.addEventListener("htmx:load", (e) => {
    const filled = e.target.matches?.(".template-filled") ? e.target : e.target.querySelector?.(".template-filled");
    if (!filled) return;
    fill(pickerOf(filled), JSON.parse(filled.dataset.fill));
  });

  // On the template form, show only the settings of the chosen kind.
  function showKind(form) {
    const kind = form.querySelector("select[name=kind]")?.value;
    form.querySelectorAll("fieldset[data-kind]").forEach((f) => { f.hidden = kind && f.dataset.kind !== kind; });
  }
  document.querySelectorAll("form[data-kind-switch]").forEach(showKind);
  document.addEventListener("change", (e) => {
    const form = e.target.closest?.("form[data-kind-switch]");
    if (form && e.target.name === "kind") showKind(form);
  });
})();
