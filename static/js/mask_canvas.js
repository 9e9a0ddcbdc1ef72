// The edit page's mask canvas. The mask is one byte per source pixel (1 = repaint), kept at the
// image's own size: the brush marks every pixel whose centre lies within the brush radius of the
// stroke (a capsule between two pointer positions), the rectangle every pixel whose centre lies in
// it, so what is painted is exactly what is sent. Zoom scales the canvas by whole factors with
// pixelated rendering, so a 32 px image is comfortable to paint. On submit the mask goes into the
// form's `mask` file input as a PNG (white = repaint, black = keep); the server checks it again.
(() => {
  "use strict";

  const MAX_UNDO = 50;

  function setup(root) {
    const form = root.closest("form");
    const view = root.querySelector("canvas.mask-view");
    const source = root.querySelector("img.mask-source");
    const fileInput = form.querySelector("input[name=image]");
    const maskInput = form.querySelector("input[name=mask]");
    const sizeInput = root.querySelector("[data-brush-size]");
    const zoomLabel = root.querySelector("[data-zoom-label]");
    const status = root.querySelector("[data-mask-status]");
    const state = {
      width: 0, height: 0, mask: null, tool: "brush", zoom: 1, undo: [], redo: [],
      last: null, rectStart: null, rectEnd: null, drawing: false,
    };
    const ctx = view.getContext("2d");

    function load(url) {
      source.onload = () => {
        state.width = source.naturalWidth;
        state.height = source.naturalHeight;
        state.mask = new Uint8Array(state.width * state.height);
        state.undo = [];
        state.redo = [];
        view.width = state.width;
        view.height = state.height;
        const fit = Math.max(1, Math.floor(512 / Math.max(state.width, state.height)));
        setZoom(fit);
        root.hidden = false;
        // "Revise this region": a review comment's rectangle starts as the mask (once, for the first image).
        if (root.dataset.rect) {
          const [x, y, w, h] = root.dataset.rect.split(",").map(Number);
          fillRect({x0: x, x1: x + w, y0: y, y1: y + h}, 1);
          delete root.dataset.rect;
        }
        render();
      };
      source.src = url;
    }

    function setZoom(zoom) {
      state.zoom = Math.min(64, Math.max(1, Math.round(zoom)));
      const w = `${state.width * state.zoom}px`;
      const h = `${state.height * state.zoom}px`;
      view.style.width = w;
      view.style.height = h;
      source.style.width = w;
      source.style.height = h;
      if (zoomLabel) zoomLabel.textContent = `${state.zoom}×`;
    }

    function painted() {
      let count = 0;
      for (const v of state.mask) count += v;
      return count;
    }

    function render() {
      if (!state.mask) return;
      const image = ctx.createImageData(state.width, state.height);
      const preview = previewRect();
      for (let y = 0; y < state.height; y += 1) {
        for (let x = 0; x < state.width; x += 1) {
          const i = y * state.width + x;
          const inRect = preview && x + 0.5 >= preview.x0 && x + 0.5 <= preview.x1 && y + 0.5 >= preview.y0 && y + 0.5 <= preview.y1;
          if (state.mask[i] || inRect) {
            image.data[i * 4] = 255;
            image.data[i * 4 + 1] = 40;
            image.data[i * 4 + 2] = 80;
            image.data[i * 4 + 3] = inRect && !state.mask[i] ? 90 : 150;
          }
        }
      }
      ctx.putImageData(image, 0, 0);
      if (status) status.textContent = `${painted()} of ${state.width * state.height} pixels masked`;
    }

    function snapshot() {
      state.undo.push(state.mask.slice());
      if (state.undo.length > MAX_UNDO) state.undo.shift();
      state.redo = [];
    }

    function point(event) {
      const rect = view.getBoundingClientRect();
      return {
        x: ((event.clientX - rect.left) / rect.width) * state.width,
        y: ((event.clientY - rect.top) / rect.height) * state.height,
      };
    }

    function radius() {
      return Math.max(0.5, Number(sizeInput.value) / 2);
    }

    // Marks (value 1) or clears (value 0) every pixel whose centre is within r of the segment a-b.
    function stroke(a, b, value) {
      const r = radius();
      const x0 = Math.max(0, Math.floor(Math.min(a.x, b.x) - r));
      const x1 = Math.min(state.width - 1, Math.ceil(Math.max(a.x, b.x) + r));
      const y0 = Math.max(0, Math.floor(Math.min(a.y, b.y) - r));
      const y1 = Math.min(state.height - 1, Math.ceil(Math.max(a.y, b.y) + r));
      const dx = b.x - a.x;
      const dy = b.y - a.y;
      const len2 = dx * dx + dy * dy;
      for (let y = y0; y <= y1; y += 1) {
        for (let x = x0; x <= x1; x += 1) {
          const px = x + 0.5;
          const py = y + 0.5;
          let t = len2 ? ((px - a.x) * dx + (py - a.y) * dy) / len2 : 0;
          t = Math.max(0, Math.min(1, t));
          const ex = a.x + t * dx - px;
          const ey = a.y + t * dy - py;
          if (ex * ex + ey * ey <= r * r) state.mask[y * state.width + x] = value;
        }
      }
    }

    function previewRect() {
      if (!state.rectStart || !state.rectEnd) return null;
      return {
        x0: Math.min(state.rectStart.x, state.rectEnd.x), x1: Math.max(state.rectStart.x, state.rectEnd.x),
        y0: Math.min(state.rectStart.y, state.rectEnd.y), y1: Math.max(state.rectStart.y, state.rectEnd.y),
      };
    }

    function fillRect(box, value) {
      for (let y = 0; y < state.height; y += 1) {
        for (let x = 0; x < state.width; x += 1) {
          if (x + 0.5 >= box.x0 && x + 0.5 <= box.x1 && y + 0.5 >= box.y0 && y + 0.5 <= box.y1) {
            state.mask[y * state.width + x] = value;
          }
        }
      }
    }

    view.addEventListener("pointerdown", (event) => {
      if (!state.mask || event.button !== 0) return;
      event.preventDefault();
      view.setPointerCapture(event.pointerId);
      snapshot();
      state.drawing = true;
      const p = point(event);
      if (state.tool === "rect") {
        state.rectStart = p;
        state.rectEnd = p;
      } else {
        stroke(p, p, state.tool === "eraser" ? 0 : 1);
        state.last = p;
      }
      render();
    });
    view.addEventListener("pointermove", (event) => {
      if (!state.drawing) return;
      const p = point(event);
      if (state.tool === "rect") {
        state.rectEnd = p;
      } else {
        stroke(state.last, p, state.tool === "eraser" ? 0 : 1);
        state.last = p;
      }
      render();
    });
    const finish = (event) => {
      if (!state.drawing) return;
      state.drawing = false;
      if (state.tool === "rect") {
        state.rectEnd = point(event);
        fillRect(previewRect(), 1);
        state.rectStart = null;
        state.rectEnd = null;
      }
      state.last = null;
      render();
    };
    view.addEventListener("pointerup", finish);
    view.addEventListener("pointercancel", finish);

    root.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      if (!button || !state.mask) return;
      event.preventDefault();
      const action = button.dataset.action;
      if (action === "brush" || action === "eraser" || action === "rect") {
        state.tool = action;
        for (const other of root.querySelectorAll("button[data-action]")) {
          other.setAttribute("aria-pressed", String(other === button));
        }
        root.querySelectorAll("[data-action=clear],[data-action=invert],[data-action=undo],[data-action=redo],[data-action=zoom-in],[data-action=zoom-out]")
          .forEach((b) => b.removeAttribute("aria-pressed"));
      } else if (action === "clear") {
        snapshot();
        state.mask.fill(0);
      } else if (action === "invert") {
        snapshot();
        for (let i = 0; i < state.mask.length; i += 1) state.mask[i] = 1 - state.mask[i];
      } else if (action === "undo" && state.undo.length) {
        state.redo.push(state.mask);
        state.mask = state.undo.pop();
      } else if (action === "redo" && state.redo.length) {
        state.undo.push(state.mask);
        state.mask = state.redo.pop();
      } else if (action === "zoom-in") {
        setZoom(state.zoom * 2);
      } else if (action === "zoom-out") {
        setZoom(state.zoom / 2);
      }
      render();
    });

    // Outpaint handles: the buttons on the canvas's sides toggle the form's side checkboxes.
    function syncSides() {
      for (const handle of root.querySelectorAll("[data-side]")) {
        const box = form.querySelector(`input[name=outpaint_sides][value=${handle.dataset.side}]`);
        if (box) handle.setAttribute("aria-pressed", String(box.checked));
      }
    }
    root.addEventListener("click", (event) => {
      const handle = event.target.closest("[data-side]");
      if (!handle) return;
      event.preventDefault();
      const box = form.querySelector(`input[name=outpaint_sides][value=${handle.dataset.side}]`);
      if (box) box.checked = !box.checked;
      syncSides();
    });
    form.addEventListener("change", (event) => {
      if (event.target.name === "outpaint_sides") syncSides();
    });
    syncSides();

    // The strength slider shows its value.
    const strength = form.querySelector("input[name=strength]");
    const strengthOut = form.querySelector("[data-strength-value]");
    if (strength && strengthOut) {
      const show = () => { strengthOut.textContent = strength.value; };
      strength.addEventListener("input", show);
      show();
    }

    fileInput.addEventListener("change", () => {
      const file = fileInput.files[0];
      if (!file) return;
      const reader = new FileReader();
      reader.onload = () => load(reader.result);
      reader.readAsDataURL(file);
    });
    if (root.dataset.src) load(root.dataset.src);

    // On submit: a painted mask replaces the mask file input's content (nothing painted: the input is
    // left as it is, so a mask file chosen by hand still goes).
    let sending = false;
    form.addEventListener("submit", (event) => {
      if (sending || !state.mask || !painted()) return;
      event.preventDefault();
      const out = document.createElement("canvas");
      out.width = state.width;
      out.height = state.height;
      const octx = out.getContext("2d");
      const image = octx.createImageData(state.width, state.height);
      for (let i = 0; i < state.mask.length; i += 1) {
        const v = state.mask[i] ? 255 : 0;
        image.data[i * 4] = v;
        image.data[i * 4 + 1] = v;
        image.data[i * 4 + 2] = v;
        image.data[i * 4 + 3] = 255;
      }
      octx.putImageData(image, 0, 0);
      out.toBlob((blob) => {
        const transfer = new DataTransfer();
        transfer.items.add(new File([blob], "mask.png", {type: "image/png"}));
        maskInput.files = transfer.files;
        sending = true;
        form.requestSubmit(event.submitter || undefined);
      }, "image/png");
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("[data-mask-canvas]").forEach(setup);
  });
})();
