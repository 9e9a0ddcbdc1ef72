// Small progressive enhancements shared by every page. Apps add their own files.
document.addEventListener("click", (event) => {
  // Close the team/project switcher when clicking elsewhere.
  document.querySelectorAll("details.switcher[open]").forEach((el) => {
    if (!el.contains(event.target)) el.removeAttribute("open");
  });
});

// Forms that ask first: <form data-confirm="Delete this?"> (no inline handlers: a CSP is coming).
document.addEventListener("submit", (event) => {
  const form = event.target.closest?.("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
});
