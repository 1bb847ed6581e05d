/*
 * Governance rule form: show only the settings of the chosen effect (approver and expiry for
 * "require approval", fields for "redact"). Without JavaScript every setting stays visible and
 * the server ignores those the effect does not use.
 *
 * Markup: <form data-rule-form> with a <select name="effect"> and wrappers
 * <div data-effect-only="require_approval">…</div>.
 */
(function () {
  "use strict";

  function sync(form) {
    var select = form.querySelector("select[name=effect]");
    if (!select) {
      return;
    }
    form.querySelectorAll("[data-effect-only]").forEach(function (group) {
      group.hidden = group.getAttribute("data-effect-only") !== select.value;
    });
  }

  function init() {
    document.querySelectorAll("form[data-rule-form]").forEach(function (form) {
      sync(form);
      form.addEventListener("change", function (event) {
        if (event.target instanceof HTMLSelectElement && event.target.name === "effect") {
          sync(form);
        }
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
