// Starts Swagger UI on /docs from a served file, so the page's CSP needs no inline script.
// Everything it loads comes from the worker: the schema's URL is in the page, not a CDN's.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.ui = window.SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    domNode: root,
    // Deep links would put a link inside each operation's button (axe: nested-interactive).
    deepLinking: false,
    // No "valid" badge: it would send the schema to an outside validator.
    validatorUrl: null,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    persistAuthorization: false,
  });
})();
