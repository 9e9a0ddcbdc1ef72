// Chat: one websocket per conversation page. Live replies are elements with
// data-live-message (their id) and data-seq (the last chunk applied). Chunks
// are applied strictly in sequence: an old one is dropped, a gap asks the
// server to replay from the Redis log. On "end" the finished reply (rendered
// markdown, metadata) is fetched from the server and swapped in.
(() => {
  const root = document.querySelector("[data-chat-socket]");
  let socket = null;
  let retry = 250;

  const liveEl = (id) => document.querySelector(`[data-live-message="${id}"]`);
  const send = (data) => { if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(data)); };
  const resume = (el) => send({ type: "resume", message: Number(el.dataset.liveMessage), after: Number(el.dataset.seq || 0) });
  const resumeAll = () => document.querySelectorAll("[data-live-message]").forEach(resume);

  // A reply queued by someone else (or in another tab): show the thread that
  // ends in it, unless this page is busy sending or its composer has a draft.
  function created(event) {
    if (document.getElementById(`msg-${event.message}`) || document.querySelector(".htmx-request")) return;
    const draft = document.querySelector("#chat-main .composer textarea[name=text]");
    const main = document.getElementById("chat-main");
    if (!main || (draft && (draft.value.trim() || document.activeElement === draft))) return;
    htmx.ajax("GET", `${location.pathname}?leaf=${event.message}`, { target: "#chat-main", swap: "outerHTML" });
  }

  function apply(event) {
    if (event.type === "created") { created(event); return; }
    const el = liveEl(event.message);
    if (!el || (event.type !== "chunk" && event.type !== "end")) return;
    const seq = Number(el.dataset.seq || 0);
    if (event.seq <= seq) return;
    if (event.seq > seq + 1) { resume(el); return; }
    el.dataset.seq = String(event.seq);
    if (event.type === "chunk") {
      el.querySelector(".stream-text").append(document.createTextNode(event.text));
      el.classList.replace("status-queued", "status-running");
      const badge = el.querySelector(".badge.status");
      if (badge) badge.textContent = "Running";
    } else {
      el.removeAttribute("data-live-message");
      htmx.ajax("GET", el.dataset.refreshUrl, { target: el, swap: "outerHTML" });
    }
  }

  function connect() {
    if (!root) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}${root.dataset.chatSocket}`);
    socket.onopen = () => { retry = 250; resumeAll(); };
    socket.onmessage = (msg) => apply(JSON.parse(msg.data));
    socket.onclose = () => { socket = null; setTimeout(connect, retry); retry = Math.min(retry * 2, 5000); };
  }

  // New live replies arrive through htmx swaps (send, regenerate, edit).
  document.addEventListener("htmx:load", (e) => {
    const els = e.target.matches?.("[data-live-message]") ? [e.target] : e.target.querySelectorAll?.("[data-live-message]") || [];
    els.forEach(resume);
  });

  // A send appends to the thread and sets the composer's new parent out of band; the rest of the composer goes
  // back to its defaults (the conversation's settings) here, as a fresh one would. A refused send replaced the
  // composer with one showing its errors: that one stays as it is.
  document.addEventListener("htmx:afterRequest", (e) => {
    const form = e.detail.elt;
    if (!form.matches?.("form#composer") || !e.detail.successful || !form.isConnected) return;
    form.reset();
    form.querySelectorAll("details[open]").forEach((details) => { details.open = false; });
  });

  // A citation [n] opens its source in the side panel: the document's title, page and heading, and the
  // passage the reply read (from the reply's own list of sources, which stays where it is). Escape closes it.
  const panel = document.getElementById("source-panel");
  function sourceOpen(item, link) {
    panel.querySelector(".source-panel-title").textContent = item.dataset.title;
    panel.querySelector(".source-panel-where").textContent = item.dataset.where;
    panel.querySelector(".source-panel-passage").textContent = item.querySelector(".passage").textContent;
    panel.hidden = false;
    panel.opener = link;
    panel.focus();
  }
  function sourceClose() {
    panel.hidden = true;
    panel.opener?.focus();
  }
  document.addEventListener("click", (e) => {
    const link = e.target.closest?.("a.citation");
    if (link && panel) {
      const item = document.getElementById(link.getAttribute("href").slice(1));
      if (!item) return;
      e.preventDefault();
      sourceOpen(item, link);
    } else if (e.target.closest?.("[data-source-close]")) {
      sourceClose();
    }
  });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape" && panel && !panel.hidden) sourceClose(); });

  // "#" in the composer lists the project's indexed documents: typing filters, arrows move, Enter or Tab
  // (or a click) puts "#name " in the text, Escape closes. A message that names documents asks them only.
  const MENTION = /(^|\s)#([\w.-]*)$/;
  const mentionMenu = (area) => area.form?.querySelector(".mention-menu");
  const mentionOptions = (menu) => [...menu.querySelectorAll(".mention-option:not([hidden])")];
  function mentionUpdate(area) {
    const menu = mentionMenu(area);
    if (!menu) return;
    const typed = MENTION.exec(area.value.slice(0, area.selectionStart));
    if (!typed) { menu.hidden = true; return; }
    let first = null;
    menu.querySelectorAll(".mention-option").forEach((option) => {
      option.hidden = !option.dataset.mention.startsWith(typed[2].toLowerCase());
      option.classList.remove("active");
      first = first || (option.hidden ? null : option);
    });
    first?.classList.add("active");
    menu.hidden = !first;
  }
  function mentionPick(area, option) {
    const before = area.value.slice(0, area.selectionStart).replace(MENTION, `$1#${option.dataset.mention} `);
    const after = area.value.slice(area.selectionStart);
    area.value = before + after;
    area.setSelectionRange(before.length, before.length);
    mentionMenu(area).hidden = true;
    area.focus();
  }
  document.addEventListener("input", (e) => {
    if (e.target.matches?.(".composer textarea[name=text]")) mentionUpdate(e.target);
  });
  document.addEventListener("mousedown", (e) => {
    const option = e.target.closest?.(".mention-option");
    if (!option) return;
    e.preventDefault();  // keep the focus (and the caret) in the text
    mentionPick(option.closest("form").querySelector("textarea[name=text]"), option);
  });
  function mentionKey(e, area) {
    const menu = mentionMenu(area);
    if (!menu || menu.hidden) return false;
    const all = mentionOptions(menu);
    const index = all.findIndex((o) => o.classList.contains("active"));
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      all.forEach((o) => o.classList.remove("active"));
      all[(index + (e.key === "ArrowDown" ? 1 : -1) + all.length) % all.length].classList.add("active");
    } else if ((e.key === "Enter" || e.key === "Tab") && !e.shiftKey && index >= 0) {
      mentionPick(area, all[index]);
    } else if (e.key === "Escape") {
      menu.hidden = true;
    } else {
      return false;
    }
    e.preventDefault();
    return true;
  }

  // Enter sends, Shift+Enter makes a new line.
  document.addEventListener("keydown", (e) => {
    const area = e.target.closest?.(".composer textarea[name=text]");
    if (area && mentionKey(e, area)) return;
    if (!area || e.key !== "Enter" || e.shiftKey || e.isComposing) return;
    e.preventDefault();
    if (area.value.trim()) area.form.requestSubmit();
  });

  document.addEventListener("click", async (e) => {
    const button = e.target.closest?.("button.copy");
    if (!button) return;
    try { await navigator.clipboard.writeText(button.dataset.copy); button.textContent = "Copied"; }
    catch { button.textContent = "Copy failed"; }
    setTimeout(() => { button.textContent = "Copy"; }, 1500);
  });

  connect();
})();
