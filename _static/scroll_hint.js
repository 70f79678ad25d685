// On a phone a wide figure keeps a readable size and its output box scrolls sideways
// (course.css); a figure that does not fit gets a line above it that says so.
function markFiguresWiderThanTheScreen() {
  for (const box of document.querySelectorAll("div.cell_output")) {
    const wide = box.querySelector("img") !== null && box.scrollWidth > box.clientWidth + 1;
    box.classList.toggle("scrolls-sideways", wide);
  }
}
window.addEventListener("load", markFiguresWiderThanTheScreen);
window.addEventListener("resize", markFiguresWiderThanTheScreen);
