// Small progressive enhancements shared by every page. Apps add their own files.
document.addEventListener("click", (event) => {
  // Close the team/project switcher when clicking elsewhere.
  document.querySelectorAll("details.switcher[open]").forEach((el) => {
    if (!el.contains(event.target)) el.removeAttribute("open");
  });
});
