// Starts Swagger UI (loaded from /static/swagger-ui-bundle.js) on the API's schema.
// A file rather than an inline script: the page's Content-Security-Policy runs no inline code.
const root = document.getElementById('swagger-ui');
window.SwaggerUIBundle({ url: root.dataset.openapiUrl, domNode: root, deepLinking: true });
