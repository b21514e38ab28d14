"""Service settings, from arguments or ``GRIDKIT_*`` environment variables."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gridkit.store import database_url


class Settings(BaseSettings):
    """Settings of the gridkit service (environment prefix ``GRIDKIT_``)."""

    model_config = SettingsConfigDict(env_prefix="GRIDKIT_")

    workspace: Path | None = Field(
        None, description="Workspace served: a GeoPackage, or a postgresql:// URL."
    )
    database_url: str | None = Field(
        None,
        description="PostgreSQL URL served when no workspace is given "
        "(GRIDKIT_DATABASE_URL, as for every gridkit command).",
    )
    evidence_dir: Path | None = Field(
        None,
        description="Folder of the evidence photos (GRIDKIT_EVIDENCE_DIR). Default: "
        "<workspace>.evidence next to a GeoPackage; on a database it must be set, to a "
        "folder every server process shares.",
    )
    title: str = "gridkit"
    anonymous_read: bool = Field(
        False, description="Let requests without an API key open the map pages (/maps/...)."
    )
    public_intake: bool = Field(
        True,
        description="Let residents report without an API key (Open311 POST requests; "
        "rate-limited, awaiting 立案). False: only clients with an api_key.",
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
    # bounds on the work a request may ask for (issue 19)
    earliest_date: date = Field(
        date(2000, 1, 1), description="First day a figure's period may start (/stats/...)."
    )
    max_period_days: int = Field(
        731, ge=1, description="Longest period of a figure, in days (start to end)."
    )
    max_patrol_fixes: int = Field(
        20_000, ge=1, description="Most fixes in one patrol (POST /patrols; 413 beyond)."
    )
    max_request_fixes: int = Field(
        50_000, ge=1, description="Most fixes in one upload of patrols (413 beyond)."
    )
    max_key_length: int = Field(
        256, ge=16, description="Longest API key looked up; a longer one is refused at once."
    )
    key_cache_size: int = Field(
        1024, ge=1, description="API keys remembered for a few seconds (least recently used go)."
    )
    figure_cache_size: int = Field(
        64, ge=1, description="Figures and map pages kept, each in its current version only."
    )
    escalate_every_s: float = Field(
        300.0,
        ge=0,
        description="Seconds between escalation runs (督办 of overdue cases); 0 turns it off.",
    )
    max_listed_errors: int = Field(
        20, ge=1, description="Validation errors listed in a 400 answer (the rest counted)."
    )
    body_timeout_s: float = Field(
        20.0,
        gt=0,
        description="Seconds a request body may go without a byte before the answer is 408.",
    )
    min_body_rate: int = Field(
        1_000,
        ge=1,
        description="Bytes per second a request body must average once body_timeout_s "
        "has passed (a body dripped slower is answered 408).",
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

    @model_validator(mode="after")
    def _served(self) -> Settings:
        """The workspace, or else the database of ``GRIDKIT_DATABASE_URL``; one is needed."""
        if self.workspace is None or str(self.workspace) == "":
            if not self.database_url:
                raise ValueError(
                    "no workspace to serve: set GRIDKIT_WORKSPACE (a .gpkg) or "
                    "GRIDKIT_DATABASE_URL (postgresql://user@host/db)"
                )
            self.workspace = Path(self.database_url)  # a URL's // is put back on opening
        return self

    def evidence_root(self) -> Path | None:
        """Where evidence photos are kept: ``evidence_dir``, else next to a GeoPackage
        workspace; ``None`` on a database without ``evidence_dir`` (nowhere shared)."""
        if self.evidence_dir is not None:
            return self.evidence_dir
        if database_url(self.workspace) is not None:
            return None
        return Path(f"{self.workspace}.evidence")
