"""Headers on every response: what a page may load, how it may be framed, HTTPS, and caching.

Every response but the static files is ``Cache-Control: no-store``: signed-in pages and PDFs carry
people's names, addresses and loans, the pages signed out carry a form's token or an emailed link's,
and a browser's back button or a shared proxy must not keep any of them. Static files keep Flask's
own caching. HSTS is sent when the app is served over https (the request, or PUBLIC_BASE_URL behind a
proxy that ends TLS).
"""
from flask import Flask, Response, current_app, request

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self'; "
    "script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
# A year; without includeSubDomains, which would bind other sites on the hub's domain too.
STRICT_TRANSPORT_SECURITY = "max-age=31536000"


def served_over_https() -> bool:
    return request.is_secure or current_app.config["PUBLIC_BASE_URL"].startswith("https://")


def is_static_file() -> bool:
    return (request.endpoint or "").rsplit(".", 1)[-1] == "static"


def init_security_headers(app: Flask) -> None:
    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        if served_over_https():
            response.headers.setdefault("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY)
        if not is_static_file() and not response.cache_control.no_store:
            response.headers["Cache-Control"] = "no-store"
        return response
