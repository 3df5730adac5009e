// Review queue focus mode (templates/queues/queue_review.html): digits pick an answer in the
// current question and move on to the next, Enter submits and opens the next item, s declines
// (with an optional reason), Esc cancels the decline, u goes back to the previous item, ? opens
// the help (#shortcuts). app.js handles u and ? too, but not while a choice (a radio) has focus.
// A text or number question takes the focus when it becomes the current one, so the reviewer
// types at once; there Esc moves on to the next question (digits pick again) and Ctrl+Enter
// submits (Enter is a new line in a text answer).
(function () {
  "use strict";

  function typing(el) {
    if (!el) return false;
    if (el.isContentEditable || el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
    return el.tagName === "INPUT" && !/^(radio|checkbox|button|submit|reset)$/.test(el.type);
  }

  function questions() {
    return Array.prototype.slice.call(document.querySelectorAll("#q-answer-form [data-question]"));
  }

  function answered(fieldset) {
    return !!fieldset.querySelector("input:checked") ||
      Array.prototype.some.call(fieldset.querySelectorAll("textarea, input[type=number]"), function (f) { return f.value !== ""; });
  }

  function current() {
    var all = questions();
    var el = document.activeElement;
    var here = el && el.closest && el.closest("[data-question]");
    if (here) return here;
    return all.filter(function (q) { return !answered(q); })[0] || all[0];
  }

  function activate(fieldset) {
    questions().forEach(function (q) { q.classList.toggle("q-active", q === fieldset); });
    if (!fieldset) return;
    var target = fieldset.querySelector("input:checked") || fieldset.querySelector("input[data-key]") ||
      fieldset.querySelector("textarea[name^='q-'], input[type=number][name^='q-']");
    if (target) target.focus({ preventScroll: false });
  }

  function leave(fieldset) {
    var following = next(fieldset);
    if (following) activate(following); else { activate(fieldset); document.getElementById("q-submit").focus(); }
  }

  function next(fieldset) {
    var all = questions();
    var rest = all.slice(all.indexOf(fieldset) + 1);
    return rest.filter(function (q) { return !answered(q); })[0] || rest[0] || null;
  }

  function showDecline(show) {
    var box = document.getElementById("q-decline-form");
    if (!box) return;
    box.hidden = !show;
    if (show) document.getElementById("q-reason").focus();
    else activate(current());
  }

  document.addEventListener("click", function (e) {
    if (e.target.closest("[data-q-decline]")) showDecline(true);
    else if (e.target.closest("[data-q-decline-cancel]")) showDecline(false);
  });

  document.addEventListener("keydown", function (e) {
    if (!document.querySelector("[data-queue-focus]")) return;
    var el = document.activeElement, form = document.getElementById("q-answer-form");
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && form && el && form.contains(el)) {
      e.preventDefault();
      form.requestSubmit();
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented) return;
    if (e.key === "Escape" && el && el.id === "q-reason") { e.preventDefault(); showDecline(false); return; }
    var answering = el && /^q-/.test(el.name || "") && el.closest("[data-question]");
    if (e.key === "Escape" && answering && typing(el)) { e.preventDefault(); leave(answering); return; }
    if (typing(el)) return;
    if (/^[0-9]$/.test(e.key) && form) {
      var fieldset = current();
      var input = fieldset && fieldset.querySelector('input[data-key="' + e.key + '"]');
      if (!input) return;
      e.preventDefault();
      input.click();
      if (input.type === "radio") {
        leave(fieldset);
      } else {
        input.focus();
      }
      return;
    }
    if (e.key === "Enter") {
      if (el && (el.tagName === "BUTTON" || el.tagName === "A" || el.tagName === "SUMMARY")) return;
      var start = document.getElementById("q-start");
      if (form) { e.preventDefault(); form.requestSubmit(); }
      else if (start) { e.preventDefault(); start.click(); }
      return;
    }
    if (e.key === "s" && document.getElementById("q-decline-form")) { e.preventDefault(); showDecline(true); return; }
    if (e.key === "u" && document.getElementById("q-prev")) { e.preventDefault(); document.getElementById("q-prev").click(); return; }
    if (e.key === "?") {
      var help = document.getElementById("shortcuts");
      if (help && !help.open) { e.preventDefault(); help.showModal(); }
    }
  });

  function init() {
    if (document.getElementById("q-answer-form")) activate(current());
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
