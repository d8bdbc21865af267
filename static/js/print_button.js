// Buttons marked data-print open the browser's print dialog (no inline handlers: the CSP
// allows scripts from this origin's files only).
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("[data-print]")) {
    button.addEventListener("click", () => window.print());
  }
});
