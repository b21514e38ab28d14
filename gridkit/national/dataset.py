"""Writing and reading the national dataset: GeoParquet partitioned by province and city.

Layout (hive-style, readable by ``dask_geopandas.read_parquet``, pyarrow and DuckDB)::

    DIR/national.json                                  plan, CRS, row counts
    DIR/<layer>/province=43/city=4302/part.parquet     per city layers
    DIR/rivers/province=43/part.parquet                rivers, by the province of their outlet

Every GeoParquet file carries its bounding-box covering columns, so a reader asks for
the rows of a box (a halo round a partition) without reading a whole neighbour.
"""

from __future__ import annotations

import json
import shutil
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.errors import GridkitError, GridkitWarning, InputFileError
from gridkit.national.activity import YEAR, window_end
from gridkit.national.build import city_layers, national_rivers, river_box
from gridkit.national.plan import ALBERS, CityPlan, NationalPlan, national_plan

__all__ = [
    "CITY_LAYERS",
    "NationalDataset",
    "build_national",
    "check_build_output",
    "open_national",
    "write_partitioned",
]

#: Layers written per city.
CITY_LAYERS = (
    "admin_areas",
    "communities",
    "buildings",
    "water_bodies",
    "workers",
    "river_chiefs",
    "departments",
    "patrols",
    "reports",
)

Mapper = Callable[[Callable[[Any], Any], Sequence[Any]], list[Any]]


def _serial_map(func: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    return [func(x) for x in items]


@dataclass(frozen=True)
class NationalDataset:
    """A national dataset on disk.

    Examples
    --------
    >>> import tempfile
    >>> ds = build_national(0.0002, (_tmp := tempfile.TemporaryDirectory()).name)
    >>> [c.code4 for c in ds.plan.cities], ds.partitions("city")
    (['1101', '1201'], ['1101', '1201'])
    >>> len(ds.read("communities", cities=["1101"])) < len(ds.read("communities"))
    True
    """

    path: Path
    plan: NationalPlan

    def partitions(self, by: str = "city") -> list[str]:
        """Partition keys: 4-digit city prefixes or 2-digit province prefixes.

        Examples
        --------
        >>> from gridkit.national import national_plan
        >>> NationalDataset(Path("."), national_plan(0.01)).partitions("province")
        ['11', '12', '13']
        """
        if by == "city":
            return [c.code4 for c in self.plan.cities]
        if by == "province":
            return sorted({c.code4[:2] for c in self.plan.cities})
        raise ValueError(f"partition by 'city' or 'province', not {by!r}")

    def files(self, layer: str, cities: Iterable[str] | None = None) -> list[Path]:
        """Files of ``layer`` for these cities or provinces (prefixes), in plan order.

        Examples
        --------
        >>> from gridkit.national import national_plan
        >>> ds = NationalDataset(Path("d"), national_plan(0.001))
        >>> [str(p) for p in ds.files("buildings", ["12"])]
        ['d/buildings/province=12/city=1201/part.parquet']
        """
        keys = None if cities is None else tuple(str(c) for c in cities)
        if layer == "rivers":
            provs = self.partitions("province")
            return [
                self.path / "rivers" / f"province={p}" / "part.parquet"
                for p in provs
                if keys is None or any(p.startswith(k[:2]) for k in keys)
            ]
        return [
            self.path / layer / f"province={c.code4[:2]}" / f"city={c.code4}" / "part.parquet"
            for c in self.plan.cities
            if keys is None or c.code4.startswith(keys)
        ]

    def cities_near(self, bbox: tuple[float, float, float, float], margin: float = 2000.0):
        """Cities whose box, grown by ``margin`` (border communities reach 600 m over a
        city line), meets ``bbox``.

        Examples
        --------
        >>> from gridkit.national import national_plan
        >>> ds = NationalDataset(Path("d"), national_plan(0.001))
        >>> ds.cities_near((-1399000, 2601000, -1398000, 2602000))
        ['1101']
        """
        b = np.array([c.box for c in self.plan.cities])
        hit = (
            (b[:, 0] - margin <= bbox[2])
            & (b[:, 2] + margin >= bbox[0])
            & (b[:, 1] - margin <= bbox[3])
            & (b[:, 3] + margin >= bbox[1])
        )
        return [c.code4 for c, h in zip(self.plan.cities, hit, strict=True) if h]

    def read(
        self,
        layer: str,
        *,
        cities: Iterable[str] | None = None,
        bbox: tuple[float, float, float, float] | None = None,
    ) -> pd.DataFrame:
        """``layer`` of these cities (or provinces, by 2-digit prefix), all by default;
        only rows whose box meets ``bbox`` when given. Rows in plan order.

        Examples
        --------
        >>> import tempfile
        >>> ds = build_national(0.0002, (_tmp := tempfile.TemporaryDirectory()).name)
        >>> ds.read("rivers").crs == ds.read("communities").crs
        True
        """
        if cities is None and bbox is not None and layer != "rivers":
            cities = self.cities_near(bbox)
        frames = []
        for f in self.files(layer, cities):
            if not f.exists():
                continue
            try:
                df = gpd.read_parquet(f, bbox=bbox)
            except ValueError:  # no geometry column (chiefs, departments)
                df = pd.read_parquet(f)
            frames.append(df)
        if not frames and cities is not None and not list(cities):
            return gpd.GeoDataFrame(geometry=[], crs=ALBERS)
        if not frames:
            raise InputFileError(
                f"{self.path}: no {layer!r} files for {list(cities or [])}.",
                hint="Build the dataset with `gridkit national build --scale S -o DIR`.",
            )
        out = pd.concat(frames, ignore_index=True)
        if isinstance(frames[0], gpd.GeoDataFrame):
            out = gpd.GeoDataFrame(out, geometry="geometry", crs=frames[0].crs)
        return out


def _write(df: pd.DataFrame, path: Path, **kwargs: Any) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    df = df.copy()
    df.attrs = {}  # pyarrow writes attrs as JSON: reports and partition tables stay out
    if isinstance(df, gpd.GeoDataFrame):
        df.to_parquet(path, write_covering_bbox=True, index=False, **kwargs)
    else:
        df.to_parquet(path, index=False, **kwargs)
    return len(df)


def write_partitioned(
    df: pd.DataFrame, out: str | Path, layer: str, *, column: str = "admin_code"
) -> list[Path]:
    """Write ``df`` as ``out/<layer>/province=PP/city=PPCC/part.parquet``, by the admin
    code (or id starting with one) in ``column``. An earlier ``out/<layer>`` is
    removed first: partitions of a previous run (cities this one lacks) would be read
    with the new ones.

    Examples
    --------
    >>> import tempfile
    >>> df = gpd.GeoDataFrame({"admin_code": ["110101001001", "120101001001"]},
    ...                       geometry=[shapely.Point(0, 0)] * 2, crs=ALBERS)
    >>> tmp = tempfile.TemporaryDirectory()
    >>> [p.parent.name for p in write_partitioned(df, tmp.name, "units")]
    ['city=1101', 'city=1201']
    """
    if (Path(out) / layer).is_dir():
        shutil.rmtree(Path(out) / layer)
    if not len(df):
        return []
    key = df[column].astype(str).str[:4]
    paths = []
    for k in sorted(set(key.tolist())):
        path = Path(out) / layer / f"province={k[:2]}" / f"city={k}" / "part.parquet"
        _write(df[(key == k).to_numpy()], path)
        paths.append(path)
    return paths


#: Rivers are written in row groups of this many rows (a basin's rivers are
#: neighbours in the file), so a city task reading the rivers of its box decodes the
#: groups whose box meets it, not the country's.
RIVER_ROW_GROUP = 256


def _city_rivers(ds: NationalDataset, city: CityPlan) -> gpd.GeoDataFrame:
    """The rivers :func:`city_layers` needs for ``city``, read from the dataset by box,
    in the national order (by ``river_id``, as :func:`national_rivers` gives them)."""
    rivers = ds.read("rivers", bbox=river_box(ds.plan, city))
    rivers = rivers.drop(columns=[c for c in ("bbox",) if c in rivers.columns])
    order = np.argsort(rivers["river_id"].to_numpy(dtype=str), kind="stable")
    return rivers.iloc[order].reset_index(drop=True)


def _build_city(args: tuple[NationalPlan, CityPlan, str, int]) -> dict[str, Any]:
    # each task reads the rivers of its box from the files the driver wrote (a task's
    # memory is its city's, not the country's rivers)
    plan, city, out, months = args
    t0 = time.perf_counter()
    ds = NationalDataset(Path(out), plan)
    layers = city_layers(plan, city, _city_rivers(ds, city), months=months)
    counts = {name: _write(layers[name], ds.files(name, [city.code4])[0]) for name in CITY_LAYERS}
    return {"city": city.code4, "rows": counts, "seconds": round(time.perf_counter() - t0, 3)}


def _river_provinces(plan: NationalPlan, rivers: gpd.GeoDataFrame) -> np.ndarray:
    """Province (2 digits) of each river's outlet: its last vertex."""
    ends = shapely.get_point(np.asarray(rivers.geometry.array), -1)
    boxes = np.array([c.box for c in plan.cities])
    x, y = shapely.get_x(ends)[:, None], shapely.get_y(ends)[:, None]
    inside = (x >= boxes[:, 0]) & (x <= boxes[:, 2]) & (y >= boxes[:, 1]) & (y <= boxes[:, 3])
    first = np.argmax(inside, axis=1)
    prov = np.array([c.code4[:2] for c in plan.cities], dtype=object)  # one plan.cities
    return prov[first]


def check_build_output(out: str | Path, *, overwrite: bool = False) -> bool:
    """Whether ``out`` may take a national build: True when it holds an earlier one to
    replace (``overwrite``), False when it is new or empty.

    Raises
    ------
    GridkitError
        When ``out`` is a file, a non-empty directory that is no national build, or
        an earlier build and ``overwrite`` is false (its partitions would be read
        together with the new ones).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> check_build_output(d)
    False
    >>> _ = (d / "notes.txt").write_text("mine")
    >>> check_build_output(d)
    Traceback (most recent call last):
    ...
    gridkit.errors.GridkitError: ... it holds notes.txt): refusing to build into it.
    Hint: Give a new or empty directory with -o.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise GridkitError(f"{out} is a file, not a directory.", hint="Give a directory with -o.")
    if not out.exists() or not any(out.iterdir()):
        return False
    if not (out / "national.json").exists():
        held = sorted(p.name for p in out.iterdir())
        raise GridkitError(
            f"{out} is not empty and holds no national build (no national.json; it holds "
            f"{', '.join(held[:3])}{' ...' if len(held) > 3 else ''}): refusing to build "
            "into it.",
            hint="Give a new or empty directory with -o.",
        )
    if not overwrite:
        raise GridkitError(
            f"{out} holds an earlier national build: its partitions would be read with "
            "the new ones.",
            hint="Pass --overwrite (overwrite=True) to replace it, or give another -o.",
        )
    return True


def _clear_build(out: Path) -> None:
    """Remove an earlier build's layer directories and ``national.json`` (first, so an
    interrupted rebuild is not taken for a complete one); warn of what stays."""
    (out / "national.json").unlink()
    for name in ("rivers", *CITY_LAYERS):
        if (out / name).is_dir():
            shutil.rmtree(out / name)
    left = sorted(p.name for p in out.iterdir())
    if left:
        warnings.warn(
            f"{out}: kept {', '.join(left)} (not a layer of the build; made from the "
            "earlier one?).",
            GridkitWarning,
            stacklevel=3,
        )


def build_national(
    scale: float,
    out: str | Path,
    *,
    seed: int = 0,
    mapper: Mapper | None = None,
    city_buildings: int | None = None,
    months: int = 12,
    overwrite: bool = False,
) -> NationalDataset:
    """Build the national dataset at ``scale`` into ``out`` (one task per city).

    Parameters
    ----------
    scale
        Fraction of the whole country (:func:`gridkit.national.national_plan`).
    out
        Output directory: new, empty, or (with ``overwrite``) an earlier build.
    seed
        Master seed; the same scale and seed give identical files.
    mapper
        ``mapper(func, items) -> list`` running the city tasks; default one after the
        other in this process. :func:`gridkit.scale.Engine.map` runs them on Dask.
    city_buildings
        Buildings per city (see :func:`gridkit.national.national_plan`).
    months
        The activity window: patrols and reports of the first ``months`` months of the
        year (1-12; the year's rows, ids included, fewer). A month of patrols is a
        twelfth of the year's disk and build time at a large scale.
    overwrite
        Replace an earlier build in ``out``: its layer directories are removed first
        (partitions of cities the new build lacks would otherwise stay and be read).

    Returns
    -------
    NationalDataset

    Raises
    ------
    ValueError
        For ``months`` outside 1-12.
    GridkitError
        When ``out`` is not empty (see :func:`check_build_output`).

    Examples
    --------
    >>> import json, tempfile
    >>> ds = build_national(0.0002, (_tmp := tempfile.TemporaryDirectory()).name, seed=1)
    >>> meta = json.loads((ds.path / "national.json").read_text(encoding="utf-8"))
    >>> meta["scale"], meta["rows"]["buildings"] > 9000
    (0.0002, True)
    """
    plan = national_plan(scale, seed=seed, city_buildings=city_buildings)
    window_end(months)  # a bad window fails here, before anything is removed
    out = Path(out)
    if check_build_output(out, overwrite=overwrite):
        _clear_build(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rivers = national_rivers(plan)
    ds = NationalDataset(out, plan)
    prov = _river_provinces(plan, rivers)
    for p in sorted(set(prov.tolist())):
        path = out / "rivers" / f"province={p}" / "part.parquet"
        _write(rivers[prov == p], path, row_group_size=RIVER_ROW_GROUP)
    t_rivers = time.perf_counter() - t0
    window_end(months)  # a bad window fails here, before any task runs
    tasks = [(plan, c, str(out), int(months)) for c in plan.cities]
    done = (mapper or _serial_map)(_build_city, tasks)
    rows = {name: sum(d["rows"][name] for d in done) for name in CITY_LAYERS}
    rows["rivers"] = len(rivers)
    meta = {
        "scale": plan.scale,
        "seed": plan.seed,
        "city_buildings": city_buildings,
        "activity": {
            "from": f"{YEAR}-01-01",
            "to": str(window_end(months).date()),
            "months": months,
        },
        "crs": ALBERS.to_wkt(),
        "provinces": plan.n_provinces,
        "cities": len(plan.cities),
        "river_km": round(float(rivers.length.sum()) / 1000.0, 1),
        "rows": rows,
        "seconds": {
            "rivers": round(t_rivers, 3),
            "total": round(time.perf_counter() - t0, 3),
            "cities": {d["city"]: d["seconds"] for d in done},
        },
    }
    (out / "national.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False), "utf-8")
    return ds


def open_national(path: str | Path) -> NationalDataset:
    """Open a dataset written by :func:`build_national`.

    Raises
    ------
    InputFileError
        When ``path`` holds no ``national.json``.

    Examples
    --------
    >>> import tempfile
    >>> d = (_tmp := tempfile.TemporaryDirectory()).name
    >>> _ = build_national(0.0002, d)
    >>> open_national(d).plan.scale
    0.0002
    """
    meta_path = Path(path) / "national.json"
    if not meta_path.exists():
        raise InputFileError(
            f"{path}: not a national dataset (no national.json).",
            hint="Build one with `gridkit national build --scale S -o DIR`.",
        )
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    plan = national_plan(
        meta["scale"], seed=meta["seed"], city_buildings=meta.get("city_buildings")
    )
    return NationalDataset(Path(path), plan)
