// On a phone a wide figure keeps a readable size and its output box scrolls sideways
// (course.css); a figure that does not fit gets a line just above it that says so (the
// line shows on narrow screens only: course.css hides it elsewhere).
function markFiguresWiderThanTheScreen() {
  for (const figure of document.querySelectorAll("div.cell_output > img")) {
    const box = figure.parentElement;
    const wide = box.scrollWidth > box.clientWidth + 1;
    const hint = figure.previousElementSibling;
    const hinted = hint !== null && hint.classList.contains("scroll-hint");
    if (wide && !hinted) {
      const line = document.createElement("div");
      line.className = "scroll-hint";
      line.textContent = "\u2190 wider than the screen: scroll sideways \u2192";
      box.insertBefore(line, figure);
    } else if (!wide && hinted) {
      hint.remove();
    }
  }
}
window.addEventListener("load", markFiguresWiderThanTheScreen);
window.addEventListener("resize", markFiguresWiderThanTheScreen);
