"""The web UI served at ``/`` by ``threadline serve``.

Pages are server-rendered Jinja2 shells; small hand-written JavaScript modules fill
them from the REST API under ``/api``. Everything ships inside the package (no CDN,
no build step), so the UI works offline.
"""

from threadline.server.ui.routes import build_ui_router

__all__ = ["build_ui_router"]
