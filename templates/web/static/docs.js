// Starts Swagger UI on /docs from a served file, so the page's CSP needs no inline script.
// Everything it loads comes from the worker: the schema's URL is in the page, not a CDN's.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");

  // Swagger UI leaves a few controls without a name a screen reader can say, or with one
  // that differs from the words shown (axe-core: button-name, label-content-name-mismatch).
  function nameControls() {
    root.querySelectorAll("button.close-modal:not([aria-label])").forEach(function (b) {
      b.setAttribute("aria-label", "Close");
    });
    root.querySelectorAll("button[aria-label]").forEach(function (b) {
      var shown = b.textContent.trim().toLowerCase();
      var label = b.getAttribute("aria-label").toLowerCase();
      if (shown && label.indexOf(shown) === -1) b.removeAttribute("aria-label");
    });
  }
  var pending = false;
  new MutationObserver(function () {
    if (pending) return;
    pending = true;
    window.requestAnimationFrame(function () {
      pending = false;
      nameControls();
    });
  }).observe(root, { childList: true, subtree: true });

  window.ui = window.SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    domNode: root,
    // Deep links would put a link inside each operation's button (axe: nested-interactive).
    deepLinking: false,
    // No "valid" badge: it would send the schema to an outside validator.
    validatorUrl: null,
    // Plain examples and responses: the highlighter's theme colours some values (numbers,
    // comments) too faintly on its dark background to read (axe: color-contrast).
    syntaxHighlight: { activated: false },
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    persistAuthorization: false,
  });
})();
