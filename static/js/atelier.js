// Small progressive enhancements shared by every page. Apps add their own files.
document.addEventListener("click", (event) => {
  // Close the team/project switcher when clicking elsewhere.
  document.querySelectorAll("details.switcher[open]").forEach((el) => {
    if (!el.contains(event.target)) el.removeAttribute("open");
  });
});

// Behaviour that templates used to write inline (onchange/onclick): the
// Content-Security-Policy allows no inline handlers, so it lives here.
document.addEventListener("change", (event) => {
  const select = event.target.closest("select[data-autosubmit]");
  if (select && select.form) select.form.requestSubmit();
});
document.addEventListener("click", (event) => {
  const input = event.target.closest("input[data-select-on-click]");
  if (input) input.select();
});
// Forms that ask first: <form data-confirm="Delete this?"> (no inline handlers: a CSP is coming).
document.addEventListener("submit", (event) => {
  const form = event.target.closest?.("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
});
