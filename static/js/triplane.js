/*
 * Triplane page behaviour. Loaded from our own origin; the site's CSP forbids inline
 * scripts and inline event handlers, so everything is wired here with addEventListener.
 *
 * data-confirm="Message": ask before following a link, pressing a button, or submitting
 * a form. Works for plain and htmx-driven elements: the listeners run in the capture
 * phase on document, before htmx's own listeners on the element, and a cancel stops the
 * event there. Put data-confirm on the button *or* on its form, not both (that would ask
 * twice). For htmx elements, hx-confirm also works (htmx calls window.confirm itself).
 */
(function () {
  "use strict";

  function confirmed(element) {
    var message = element.getAttribute("data-confirm") || "Are you sure?";
    return window.confirm(message);
  }

  function stop(event) {
    event.preventDefault();
    event.stopPropagation();
    event.stopImmediatePropagation();
  }

  document.addEventListener(
    "click",
    function (event) {
      if (!(event.target instanceof Element)) {
        return;
      }
      var element = event.target.closest(
        "a[data-confirm], button[data-confirm], input[type=submit][data-confirm]"
      );
      if (element && !element.disabled && !confirmed(element)) {
        stop(event);
      }
    },
    true
  );

  document.addEventListener(
    "submit",
    function (event) {
      var form = event.target;
      if (form instanceof HTMLFormElement && form.hasAttribute("data-confirm") && !confirmed(form)) {
        stop(event);
      }
    },
    true
  );
})();
