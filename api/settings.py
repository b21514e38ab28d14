"""Service settings, from arguments or ``GRIDKIT_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Settings of the gridkit service (environment prefix ``GRIDKIT_``)."""

    model_config = SettingsConfigDict(env_prefix="GRIDKIT_")

    workspace: Path = Field(description="Workspace GeoPackage served.")
    title: str = "gridkit"
    anonymous_read: bool = Field(
        False, description="Let requests without an API key open the map pages (/maps/...)."
    )
    default_limit: int = Field(100, ge=1, le=10_000)
    max_limit: int = Field(10_000, ge=1)
    max_body_bytes: int = Field(
        8_000_000, description="Largest accepted request body (photos included)."
    )
    max_upload_bytes: int = Field(5_000_000, description="Largest evidence photo.")
    max_vertices: int = Field(
        5_000_000, ge=1, description="Most vertices in an uploaded grid (POST /versions)."
    )
    collections: tuple[str, ...] = (
        "units",
        "reaches",
        "reports",
        "patrols",
        "workers",
        "admin_areas",
        "water_bodies",
    )
