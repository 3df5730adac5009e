// Feedback definitions in the assessments panel: digit keys pick a level or option, text
// inputs count their characters. Loaded by the definition-built form (once per page).
(function () {
  "use strict";
  if (window.fhDefinitions) return;
  window.fhDefinitions = true;

  function typing(el) {
    if (!el) return false;
    if (el.isContentEditable || el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
    return el.tagName === "INPUT" && !/^(radio|checkbox|button|submit|reset)$/.test(el.type);
  }

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented || !/^[0-9]$/.test(e.key)) return;
    if (typing(document.activeElement)) return;
    var box = document.querySelector("#assessment-panel [data-def-keys]");
    var input = box && box.querySelector('input[data-key="' + e.key + '"]');
    if (!input) return;
    e.preventDefault();
    input.click();
    input.focus();
  });

  // The definitions page: show the constraints of the chosen type only.
  function showConstraints() {
    var type = document.getElementById("def-type");
    if (!type) return;
    document.querySelectorAll("[data-for-type]").forEach(function (field) {
      field.hidden = field.dataset.forType !== type.value;
    });
  }
  document.addEventListener("change", function (e) { if (e.target.id === "def-type") showConstraints(); });
  document.addEventListener("DOMContentLoaded", showConstraints);
  if (document.readyState !== "loading") showConstraints();

  document.addEventListener("input", function (e) {
    var area = e.target.closest && e.target.closest("[data-def-counter]");
    var count = area && area.parentNode.querySelector("[data-def-count]");
    if (count) count.textContent = area.value.length;
  });
})();
