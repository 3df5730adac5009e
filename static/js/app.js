// FeedbackHub: keyboard shortcuts, span tree, tabs, copy buttons. No framework; htmx does the requests.
// Every feature is an enhancement: without this file the pages still work through links and forms.
(function () {
  "use strict";
  var $ = function (sel, root) { return (root || document).querySelector(sel); };
  var $$ = function (sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); };

  function toast(text) {
    var box = $("#toast");
    if (!box) return;
    box.textContent = text;
    box.classList.add("show");
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { box.classList.remove("show"); }, 2600);
  }

  function typing(el) {
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }

  // --- span tree -------------------------------------------------------------------------------

  var depth = function (row) { return Number(row.dataset.depth || 0); };
  var rowOf = function (id) { return id && $('#span-tree li[data-span="' + id + '"]'); };

  function setExpanded(row, open) {
    var twisty = $("button.twisty", row);
    if (!twisty) return;
    twisty.setAttribute("aria-expanded", open ? "true" : "false");
    var d = depth(row), skip = null;
    for (var next = row.nextElementSibling; next && depth(next) > d; next = next.nextElementSibling) {
      if (!open) { next.hidden = true; continue; }
      if (skip !== null && depth(next) > skip) continue;
      skip = null;
      next.hidden = false;
      var inner = $("button.twisty", next);
      if (inner && inner.getAttribute("aria-expanded") === "false") skip = depth(next);
    }
  }

  function reveal(row) {
    var parent = rowOf(row.dataset.parent);
    if (!parent) return;
    reveal(parent);
    if ($("button.twisty", parent).getAttribute("aria-expanded") === "false") setExpanded(parent, true);
  }

  function selectSpan(id, push) {
    var page = $("[data-trace-page]"), row = rowOf(id), detail = $("#span-detail");
    if (!page || !row || !window.htmx) return false;
    reveal(row);
    $$("#span-tree li.is-selected").forEach(function (r) {
      r.classList.remove("is-selected");
      $(".span-link", r).removeAttribute("aria-current");
    });
    row.classList.add("is-selected");
    var link = $(".span-link", row);
    link.setAttribute("aria-current", "true");
    page.dataset.selectedSpan = id;
    if (detail) detail.classList.add("is-loading");
    htmx.ajax("GET", page.dataset.spanUrl.replace("__span__", id) + location.search, { target: "#span-detail", swap: "outerHTML" });
    if (push !== false) {
      var url = new URL(link.href);
      if (page.dataset.tab) url.searchParams.set("tab", page.dataset.tab);  // the open tab stays (js/review.js)
      history.replaceState(history.state, "", url.pathname + url.search);
    }
    $$("[data-attach-span]").forEach(function (box) { box.value = id; });
    $$("[data-attach-span-name]").forEach(function (el) { el.textContent = $(".span-name", row).textContent; });
    return true;
  }

  function moveInTree(link, key) {
    var row = link.closest("li"), rows = $$("#span-tree > li:not([hidden])"), i = rows.indexOf(row), target = null;
    var twisty = $("button.twisty", row), open = twisty && twisty.getAttribute("aria-expanded") === "true";
    if (key === "ArrowDown") target = rows[i + 1];
    else if (key === "ArrowUp") target = rows[i - 1];
    else if (key === "Home") target = rows[0];
    else if (key === "End") target = rows[rows.length - 1];
    else if (key === "ArrowRight") { if (twisty && !open) setExpanded(row, true); else target = rows[i + 1] && rows[i + 1].dataset.parent === row.dataset.span ? rows[i + 1] : null; }
    else if (key === "ArrowLeft") { if (open) setExpanded(row, false); else target = rowOf(row.dataset.parent); }
    if (target) { $(".span-link", target).focus(); target.scrollIntoView({ block: "nearest" }); }
  }

  // --- trace list ------------------------------------------------------------------------------

  function moveInList(step) {
    var rows = $$("#trace-table tbody tr");
    if (!rows.length) return;
    var current = $("#trace-table tr.is-current"), i = rows.indexOf(current);
    i = i < 0 ? (step > 0 ? 0 : rows.length - 1) : Math.min(Math.max(i + step, 0), rows.length - 1);
    if (current) current.classList.remove("is-current");
    rows[i].classList.add("is-current");
    $("a", rows[i]).focus();
    rows[i].scrollIntoView({ block: "nearest" });
  }

  // --- keyboard --------------------------------------------------------------------------------

  var lastKey = "";
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented) return;
    var el = document.activeElement, key = e.key;
    if (key === "Escape") {
      var pop = $("details[data-popover][open]");
      if (pop) { pop.open = false; $("summary", pop).focus(); return; }
      if ($("dialog[open]")) return;
      var close = $("#assessment-panel [data-cancel]") || $("#assessment-panel [data-dismiss-history]");
      if (close) { e.preventDefault(); close.click(); }
      return;
    }
    if (el && el.classList.contains("span-link") && /^(Arrow(Up|Down|Left|Right)|Home|End)$/.test(key)) {
      e.preventDefault();
      moveInTree(el, key);
      return;
    }
    if (typing(el) || /^Arrow/.test(key)) return;
    var hot = function (k) { var t = $('[data-hotkey="' + k + '"]'); if (t) { e.preventDefault(); t.click(); } return t; };
    var combo = lastKey + key;
    lastKey = key === "g" ? "g" : "";
    if (combo === "gh") { location.href = "/"; return; }
    if (key === "?") { e.preventDefault(); var dialog = $("#shortcuts"); if (dialog && !dialog.open) dialog.showModal(); return; }
    if (key === "/") { var filter = $("#filter"); if (filter) { e.preventDefault(); filter.focus(); filter.select(); } return; }
    if ((key === "j" || key === "k") && $("#trace-table")) { e.preventDefault(); moveInList(key === "j" ? 1 : -1); return; }
    if (key === "e") {
      var item = el && el.closest && el.closest("[data-assessment]");
      var edit = (item && $("[data-edit]", item)) || $(".item.is-mine:not(.is-overridden) [data-edit]") || $("[data-edit]");
      if (edit) { e.preventDefault(); edit.click(); }
      return;
    }
    var open = key === "a" && $("#add-form-title");
    if (open) { e.preventDefault(); $("input:not([type=hidden])", open.closest("form")).focus(); return; }
    if (/^[jkaud]$/.test(key)) hot(key);
  });

  // --- clicks ----------------------------------------------------------------------------------

  document.addEventListener("click", function (e) {
    var t = e.target;
    $$("details[data-popover][open]").forEach(function (pop) { if (!pop.contains(t)) pop.open = false; });
    if (e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
    var link = t.closest(".span-link");
    if (link && selectSpan(link.closest("li").dataset.span)) { e.preventDefault(); return; }
    var twisty = t.closest("button.twisty");
    if (twisty) { var row = twisty.closest("li"); setExpanded(row, twisty.getAttribute("aria-expanded") === "false"); return; }
    var ref = t.closest("[data-select-span]");
    if (ref && selectSpan(ref.dataset.selectSpan)) {
      e.preventDefault();
      var target = rowOf(ref.dataset.selectSpan);
      target.scrollIntoView({ block: "center" });
      $(".span-link", target).focus();
      return;
    }
    var tool = t.closest("[data-tree]");
    if (tool) {
      var open = tool.dataset.tree === "expand";
      $$("#span-tree > li").forEach(function (r) {
        var tw = $("button.twisty", r);
        if (tw) tw.setAttribute("aria-expanded", open ? "true" : "false");
        r.hidden = !open && depth(r) > 0;
      });
      return;
    }
    // span tabs: js/review.js
    var copy = t.closest("[data-copy]");
    if (copy) {
      var done = function () { copy.classList.add("copied"); toast("Copied " + copy.dataset.copy); setTimeout(function () { copy.classList.remove("copied"); }, 1200); };
      if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(copy.dataset.copy).then(done);
      else { var area = document.createElement("textarea"); area.value = copy.dataset.copy; document.body.appendChild(area); area.select(); document.execCommand("copy"); area.remove(); done(); }
      return;
    }
    var insert = t.closest("[data-insert]");
    if (insert) {
      var filter = $("#filter");
      filter.value = insert.dataset.insert;
      insert.closest("details").open = false;
      filter.focus();
      return;
    }
    var dismiss = t.closest("[data-dismiss-history]");
    if (dismiss) {
      e.preventDefault();
      var box = dismiss.closest(".history"), empty = document.createElement("div");
      empty.id = box.id; empty.className = "history-slot";
      box.replaceWith(empty);
      return;
    }
    if (t.closest("[data-open-shortcuts]")) { $("#shortcuts").showModal(); return; }
    var tr = t.closest("tr[data-href]");
    if (tr && !t.closest("a, button, input") && !String(window.getSelection())) location.href = tr.dataset.href;
  });

  // The list's sort applies at once. A delegated listener, not an hx-trigger on the swapped form:
  // the form htmx has just swapped in is processed only when it settles, and a change made before
  // that would be lost. requestSubmit goes through htmx once it has processed the form, and is a
  // plain GET (the same URL) before.
  document.addEventListener("change", function (e) {
    if (e.target.id === "sort" && e.target.form) e.target.form.requestSubmit();
  });

  // --- htmx hooks --------------------------------------------------------------------------------

  document.addEventListener("htmx:configRequest", function (e) {
    var page = $("[data-trace-page]");
    if (page && page.dataset.selectedSpan && e.detail.elt.closest("#assessment-panel")) e.detail.parameters.span = page.dataset.selectedSpan;
  });
  document.addEventListener("htmx:afterSettle", function (e) {
    var focus = e.detail.elt.id === "assessment-panel" && $("[data-focus]", e.detail.elt);
    if (focus && !$("[autofocus]", e.detail.elt)) {
      focus.focus({ preventScroll: true });
      focus.scrollIntoView({ block: "nearest" });
      focus.classList.add("flash");
    }
  });
  document.addEventListener("htmx:responseError", function (e) {
    var status = e.detail.xhr.status;
    toast(status === 404 ? "Not found: it may have been deleted. Reload the page." : "The server answered " + status + ". Nothing was changed; try again.");
  });
  document.addEventListener("htmx:sendError", function () { toast("Network error: nothing was saved. Check the connection and try again."); });
})();
