// The before/after slider of an edit's result page: the range input moves the split.
document.addEventListener("input", (event) => {
  const range = event.target.closest("[data-before-after]");
  if (!range) return;
  const box = document.getElementById(range.dataset.beforeAfter);
  if (box) box.style.setProperty("--split", `${range.value}%`);
});
