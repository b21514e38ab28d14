"""gridkit's HTTP service: a thin FastAPI layer over gridkit (no geometry logic here).

``api.create_app(settings)`` builds the app; ``gridkit serve WORKSPACE`` runs it.
"""

from api.app import create_app
from api.settings import Settings

__all__ = ["Settings", "create_app"]
