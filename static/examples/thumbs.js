/* FeedbackHub thumbs widget: posts an end user's 👍 / 👎 with a feedback token (no secrets).
   Markup: an element with data-feedbackhub-thumbs, data-endpoint, data-token (or ?token= in
   the page address), data-name, buttons with data-value="true|false" and an element with
   data-feedbackhub-status for the outcome. No dependencies, no inline code. */
(function () {
  "use strict";

  function errorText(status, body) {
    if (status === 429) return "Too many clicks, please try again in a moment.";
    if (body && body.detail) return body.detail;
    if (body && typeof body === "object") {
      var field = Object.keys(body)[0];
      if (field) return field + ": " + [].concat(body[field]).join(" ");
    }
    return "Sorry, your feedback could not be sent (" + status + ").";
  }

  function init(widget) {
    var token = widget.dataset.token || new URLSearchParams(window.location.search).get("token") || "";
    var status = widget.querySelector("[data-feedbackhub-status]");
    var buttons = widget.querySelectorAll("button[data-value]");

    function say(text) { if (status) status.textContent = text; }
    function lock(locked) { buttons.forEach(function (b) { b.disabled = locked; }); }

    if (!token) { say("No feedback token on this page."); lock(true); return; }

    buttons.forEach(function (button) {
      button.addEventListener("click", function () {
        lock(true);
        say("Sending…");
        fetch(widget.dataset.endpoint, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ token: token, name: widget.dataset.name || "user_satisfaction",
                                 value: button.dataset.value === "true" })
        }).then(function (response) {
          return response.json().catch(function () { return null; }).then(function (body) {
            if (response.ok) {
              button.setAttribute("aria-pressed", "true");
              say("Thanks for your feedback!");
            } else {
              say(errorText(response.status, body));
              lock(response.status === 403 || response.status === 409);  // the token is no good
            }
          });
        }).catch(function () {
          say("Network error, please try again.");
          lock(false);
        });
      });
    });
  }

  document.querySelectorAll("[data-feedbackhub-thumbs]").forEach(init);
})();
