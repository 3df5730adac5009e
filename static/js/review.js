// FeedbackHub, the reviewer's page (issue 17): span tabs with arrow keys and `o`, the tab kept in
// the URL and across next / prev, "Show all" on clamped text, the add form focused when it opens.
// Enhancements only: the tabs are links and every form posts without this file.
(function () {
  "use strict";
  var $ = function (sel, root) { return (root || document).querySelector(sel); };
  var $$ = function (sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); };
  var typing = function (el) { return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName)); };

  // --- span tabs -------------------------------------------------------------------------------

  function withTab(href, key) {
    var url = new URL(href, location.href);
    url.searchParams.set("tab", key);
    return url.pathname + url.search + url.hash;
  }

  // Shows `tab`, moves the roving tabindex to it and remembers the choice in the URL, in the
  // prev / next links (so the next trace opens on the same tab) and for the next span loaded.
  function activate(tab, focus) {
    var list = tab.closest('[role="tablist"]'), key = tab.id.replace(/^tab-/, "");
    $$('[role="tab"]', list).forEach(function (other) {
      var on = other === tab;
      other.setAttribute("aria-selected", on ? "true" : "false");
      other.tabIndex = on ? 0 : -1;
      var panel = document.getElementById(other.getAttribute("aria-controls"));
      if (panel) panel.hidden = !on;
    });
    if (focus) tab.focus();
    var page = $("[data-trace-page]");
    if (page) page.dataset.tab = key;
    history.replaceState(history.state, "", withTab(location.href, key));
    $$('a[rel="next"], a[rel="prev"]').forEach(function (a) { a.href = withTab(a.href, key); });
  }

  document.addEventListener("click", function (e) {
    if (e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
    var tab = e.target.closest('.tabs [role="tab"]');
    if (tab) { e.preventDefault(); activate(tab, false); return; }
    var more = e.target.closest("[data-show-all]");
    if (more) {
      var box = more.closest("[data-clamp]"), open = !box.classList.contains("is-open");
      box.classList.toggle("is-open", open);
      $$(".clamp-rest", box).forEach(function (rest) { rest.hidden = !open; });
      more.setAttribute("aria-expanded", open ? "true" : "false");
      more.textContent = open ? "Show less" : more.dataset.label || more.textContent;
    }
  });
  document.addEventListener("mousedown", function (e) {
    var more = e.target.closest && e.target.closest("[data-show-all]");
    if (more && !more.dataset.label) more.dataset.label = more.textContent;
  });

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented) return;
    var el = document.activeElement, key = e.key;
    if (el && el.matches && el.matches('.tabs [role="tab"]') && /^(ArrowLeft|ArrowRight|Home|End)$/.test(key)) {
      var tabs = $$('[role="tab"]', el.closest('[role="tablist"]')), i = tabs.indexOf(el);
      i = key === "Home" ? 0 : key === "End" ? tabs.length - 1 : (i + (key === "ArrowRight" ? 1 : -1) + tabs.length) % tabs.length;
      e.preventDefault();
      activate(tabs[i], true);
      return;
    }
    if (typing(el) || $("dialog[open]")) return;
    if (key === "o") {
      var outputs = $("#span-detail #tab-outputs");
      if (outputs) { e.preventDefault(); activate(outputs, false); $("#tabpanel-outputs").scrollIntoView({ block: "nearest" }); }
    }
  });

  // --- the add / edit form: focus lands in it when it opens, on the first field in error after a failed save
  document.addEventListener("htmx:afterSettle", function (e) {
    var panel = e.detail.elt;
    if (!panel || panel.id !== "assessment-panel") return;
    var form = $(".panel-form", panel);
    if (!form) return;
    var shown = $$('input:not([type=hidden]):not([disabled]), textarea, select', form).filter(function (el) { return el.offsetParent !== null; });
    var name = $('input[name="name"]', form);
    var valueInputs = shown.filter(function (el) { return el.closest(".vf, .def-value"); });
    // a failed save: the first field in error; a named form (another rating, a thumb): its value
    var field = $('[aria-invalid="true"]', form) || (name && !name.value ? name : null)
      || valueInputs.filter(function (el) { return el.checked; })[0] || valueInputs[0] || shown[0];
    var error = $(".field-error, .notice-error", form);
    (error || form).scrollIntoView({ block: "nearest" });
    if (field) field.focus({ preventScroll: true });
    if (error && field) field.scrollIntoView({ block: "nearest" });
  });
})();
