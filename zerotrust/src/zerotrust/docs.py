"""/docs without a CDN: Swagger UI served from the installed swagger-ui-bundle package.

FastAPI's default page loads Swagger UI from a CDN and starts it with an inline script; the APIs'
Content-Security-Policy (and an offline laptop) allow neither. Here every file comes from this
host and the start-up script is a file too, so the docs page needs no exception for scripts.
"""

from __future__ import annotations

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.requests import Request
from swagger_ui_bundle import swagger_ui_path

# Swagger UI sets style attributes from script; nothing else is loosened, and only on these pages.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_ASSETS = {"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "favicon-32x32.png"}
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - API docs</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script><script src="/docs/init.js"></script></body></html>"""
_INIT = """window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis], layout: "BaseLayout"});"""
PUBLIC_PATHS = ("/docs", "/docs/init.js", "/docs/assets/{name}", "/openapi.json")


def serve_docs(app: FastAPI) -> None:
    """/openapi.json and /docs, for an app created with openapi_url, docs_url and redoc_url None."""
    headers = {"Content-Security-Policy": DOCS_CSP, "Cache-Control": "no-cache"}

    async def schema(_request: Request) -> JSONResponse:
        # app.openapi as called now: zerotrust.openapi adds what each route needs to FastAPI's schema.
        return JSONResponse(app.openapi())

    app.add_route("/openapi.json", schema, include_in_schema=False)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(_PAGE.format(title=app.title), headers=headers)

    @app.get("/docs/init.js", include_in_schema=False)
    async def init() -> Response:
        return Response(_INIT, media_type="text/javascript", headers=headers)

    @app.get("/docs/assets/{name}", include_in_schema=False)
    async def asset(name: str) -> FileResponse:
        # A fixed list of file names: nothing from the URL reaches the filesystem unchecked.
        if name not in _ASSETS:
            raise HTTPException(404)
        return FileResponse(swagger_ui_path / name, headers=headers)
