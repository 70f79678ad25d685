// A folded cell's toggle is named by the words it shows ("Show code cell source", "Show the
// solution"), not "Toggle hidden content": myst-nb and sphinx-togglebutton give every toggle
// that one name, so a screen reader heard it 27 times on a page and a spoken "click Show the
// solution" found nothing.
function nameTogglesByTheirWords() {
  for (const summary of document.querySelectorAll('summary[aria-label="Toggle hidden content"]')) {
    summary.removeAttribute("aria-label");  // named by its visible paragraph
  }
  for (const button of document.querySelectorAll('button.toggle-button[aria-label="Toggle hidden content"]')) {
    const title = button.closest(".admonition-title");
    const words = title === null ? "" : title.textContent.trim();
    if (words) button.setAttribute("aria-label", words);
  }
}
window.addEventListener("load", nameTogglesByTheirWords);
