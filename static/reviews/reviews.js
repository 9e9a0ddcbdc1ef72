// Reviews: draw region comments over the image, drag a new region, autosubmit filters.
// A static file (no inline scripts): the pages only carry data-* attributes.
(() => {
  const place = (canvas, el, x, y, w, h) => {
    const W = Number(canvas.dataset.width), H = Number(canvas.dataset.height);
    el.style.left = `${(100 * x) / W}%`;
    el.style.top = `${(100 * y) / H}%`;
    el.style.width = `${(100 * w) / W}%`;
    el.style.height = `${(100 * h) / H}%`;
  };

  const setup = (canvas) => {
    canvas.querySelectorAll(".region[data-x]").forEach((el) => {
      place(canvas, el, +el.dataset.x, +el.dataset.y, +el.dataset.w, +el.dataset.h);
    });
    if (canvas.dataset.draw !== "true") return;
    const img = canvas.querySelector("img");
    const draft = canvas.querySelector(".region-draft");
    const form = document.querySelector(".comment-form");
    if (!img || !draft || !form) return;
    const field = (name) => form.querySelector(`input[name="region_${name}"]`);
    const chosen = form.querySelector(".region-chosen");
    const W = Number(canvas.dataset.width), H = Number(canvas.dataset.height);
    // Pointer position in image pixels, clamped to the image.
    const toImage = (event) => {
      const box = img.getBoundingClientRect();
      const x = Math.round(((event.clientX - box.left) / box.width) * W);
      const y = Math.round(((event.clientY - box.top) / box.height) * H);
      return [Math.min(Math.max(x, 0), W), Math.min(Math.max(y, 0), H)];
    };
    let start = null;
    const rect = (a, b) => [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.abs(a[0] - b[0]), Math.abs(a[1] - b[1])];
    canvas.addEventListener("pointerdown", (event) => {
      if (event.button !== 0) return;
      start = toImage(event);
      canvas.setPointerCapture(event.pointerId);
      event.preventDefault();
    });
    canvas.addEventListener("pointermove", (event) => {
      if (!start) return;
      const [x, y, w, h] = rect(start, toImage(event));
      place(canvas, draft, x, y, w, h);
      draft.hidden = false;
    });
    canvas.addEventListener("pointerup", (event) => {
      if (!start) return;
      const [x, y, w, h] = rect(start, toImage(event));
      start = null;
      if (w < 1 || h < 1) { draft.hidden = true; return; }
      field("x").value = x; field("y").value = y; field("w").value = w; field("h").value = h;
      place(canvas, draft, x, y, w, h);
      draft.hidden = false;
      if (chosen) chosen.hidden = false;
      form.querySelector("textarea[name=text]")?.focus();
    });
    form.querySelector(".region-clear")?.addEventListener("click", () => {
      ["x", "y", "w", "h"].forEach((k) => { field(k).value = ""; });
      draft.hidden = true;
      if (chosen) chosen.hidden = true;
    });
  };

  const init = () => {
    document.querySelectorAll(".region-canvas").forEach(setup);
    document.querySelectorAll("select.autosubmit").forEach((select) => {
      select.addEventListener("change", () => select.form.requestSubmit());
    });
    document.querySelectorAll(".region-link").forEach((link) => {
      link.addEventListener("mouseenter", () => document.getElementById(`region-${link.dataset.region}`)?.classList.add("hot"));
      link.addEventListener("mouseleave", () => document.getElementById(`region-${link.dataset.region}`)?.classList.remove("hot"));
    });
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
