// Swagger UI on /docs, from the assets this server ships (swagger-ui-dist, pinned in
// package-lock.json): nothing is loaded from another origin, and no inline script, so
// the page's Content-Security-Policy holds.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  validatorUrl: null, // no badge fetched from validator.swagger.io
  tryItOutEnabled: false,
  persistAuthorization: false,
});
