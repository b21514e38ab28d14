"""Writes the notebooks from the cell sources below (run: python notebooks/_build.py).

Keeping the sources here keeps the notebooks reviewable as code; the .ipynb files are
what users open in Jupyter, and tests/test_notebooks.py executes each of them.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

HERE = Path(__file__).parent

PLANNERS = [
    "# 规划人员 · Planners: redraw community grids and publish a version\n\n"
    "Split communities into grid units balanced by households, validate them, compare "
    "a redraw with the version in force and publish it. Sample data: Zhuzhou "
    "(real districts, synthetic communities and buildings).",
    "import pathlib, tempfile\nimport geopandas as gpd, pandas as pd\nimport geodata, gridkit\n"
    "from gridkit.synth import sample_layers\n\n"
    "layers = sample_layers(admin=geodata.zhuzhou_admin(), river=geodata.xiang_river())\n"
    "communities = layers['communities'].head(4)\n"
    "buildings = layers['buildings']\ncommunities[['community_id', 'name', 'admin_code']]",
    "units = gridkit.split_communities(communities, buildings, max_households=300)\n"
    "report = units.attrs['report']\n"
    "print(len(units), 'units; lower bound', report.min_units)\n"
    "units[['unit_id', 'households', 'polsby_popper']].head()",
    "check = gridkit.validate_units(units, communities=communities, buildings=buildings,\n"
    "                               max_households=300)\nprint(check)\nassert check.ok",
    "ws = pathlib.Path(tempfile.mkdtemp()) / 'grid.gpkg'\n"
    "v1, _ = gridkit.publish(units, ws, note='first grid')\n"
    "# a tighter cap in the first community only\n"
    "first = communities.iloc[[0]]\n"
    "redrawn = gridkit.split_communities(first, buildings, max_households=150)\n"
    "draft = gpd.GeoDataFrame(pd.concat([units[units.parent_id != first.community_id.iloc[0]],\n"
    "                                    redrawn], ignore_index=True), crs=units.crs)\n"
    "v2, diff = gridkit.publish(draft, ws, note='tighter cap')\nprint(diff)\n"
    "assert {i.rsplit('-', 1)[0] for i in diff.touched_ids()} == {first.community_id.iloc[0]}",
    "gridkit.diff_map(units[units.unit_id.isin(diff.touched_ids())],\n"
    "                 draft[draft.unit_id.isin(diff.touched_ids())], diff.lineage,\n"
    "                 offline=True, tiles=None, lang='zh')",
]

ANALYSTS = [
    "# 分析人员 · Analysts: rivers, river chiefs and hotspots\n\n"
    "Split the real Xiang River at the real district boundaries, check four-level chief "
    "coverage, and find hotspots of reported problems with Getis-Ord Gi*.",
    "import geodata, gridkit\nfrom gridkit.synth import sample_layers\n"
    "admin = geodata.zhuzhou_admin()\n"
    "reaches, units = gridkit.split_rivers(geodata.xiang_river(), admin, max_length_m=5000,\n"
    "                                      min_length_m=500)\n"
    "reaches.groupby('admin_code')['length_m'].agg(['count', 'sum']).round(0)",
    "report = gridkit.validate_units(units, reaches=reaches, admin_areas=admin,\n"
    "                                max_length_m=5000)\n"
    "print(report)\nassert report.ok",
    "layers = sample_layers(admin=admin, river=geodata.xiang_river())\n"
    "split = gridkit.split_rivers(layers['rivers'], layers['admin_areas'], max_length_m=3000)\n"
    "cov = gridkit.chief_coverage(split.reaches, layers['river_chiefs'], layers['admin_areas'])\n"
    "print(f'four-level full coverage: {cov.full_share:.0%} of rivers')\n"
    "cov.sections[~cov.sections['covered']].head()",
    "from gridkit.synth.ops import grid_units, grid_workers\n"
    "grid = grid_units(10, 10, admin_code='430202001001')\n"
    "workers, assignments = grid_workers(grid)\n"
    "season = gridkit.simulate(grid, workers, assignments, start='2026-03-01',\n"
    "                          end='2026-04-01', seed=7)\n"
    "hot = gridkit.hotspots(season.reports, grid, permutations=199, seed=1)\n"
    "hot['hotspot'].value_counts()",
    "planted = set(season.planted_units)\n"
    "found = set(hot.loc[hot['hotspot'].str.startswith('hot'), 'unit_id'])\n"
    "print(f'{len(found & planted)} of {len(planted)} planted cluster units are hot')\n"
    "assert found & planted",
    "gridkit.hotspot_map(hot, reports=season.reports, offline=True, tiles=None, lang='en')",
]

SUPERVISORS = [
    "# 督导人员 · Supervisors: staffing, patrol compliance and the 红黑榜\n\n"
    "Put a worker on every unit, check patrols against the frequency rules, and rank "
    "workers by compliance and timely resolution.",
    "import gridkit\nfrom gridkit.synth.ops import grid_units, grid_workers\n"
    "from gridkit.ops.patrols import flag_patrols\n"
    "units = grid_units(8, 8, river_rows=1, admin_code='430202001001')\n"
    "workers, _ = grid_workers(units)\nworkers = workers.iloc[::3].assign(capacity=1500.0)\n"
    "result = gridkit.assign_workers(units, workers, time_limit_s=10, valid_from='2026-01-01')\n"
    "print(result.report())",
    "assert result.unassigned.empty\n"
    "season = gridkit.simulate(units, workers, result.assignments, start='2026-03-01',\n"
    "                          end='2026-04-01', seed=11)\n"
    "patrols = flag_patrols(season.patrols)\n"
    "print(f\"{(~patrols['valid']).sum()} of {len(patrols)} patrols do not count\")\n"
    "compliance = gridkit.patrol_compliance(patrols, result.assignments,\n"
    "                                       period=('2026-03-01', '2026-04-01'),\n"
    "                                       units=units, workers=workers, now='2026-04-01')\n"
    "assert len(compliance)\n"
    "compliance[['worker_id', 'unit_id', 'required', 'done', 'compliant', 'days_overdue']].head()",
    "ranking = gridkit.assess(compliance=compliance, reports=season.reports, workers=workers,\n"
    "                         departments=season.departments, now='2026-04-01')\n"
    "ranking.workers.sort_values('rank').tail(5)",
    "# how every map looks: one options object (keywords override it)\n"
    "from gridkit.maps import MapOptions\n"
    "options = MapOptions(offline=True, tiles=None, lang='zh', period='2026年3月')\n"
    "gridkit.compliance_map(units, compliance, options=options)",
]


def write(name: str, cells: list[str]) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(cells[0])] + [
        nbformat.v4.new_code_cell(src) for src in cells[1:]
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path = HERE / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


if __name__ == "__main__":
    for name, cells in (
        ("planners", PLANNERS),
        ("analysts", ANALYSTS),
        ("supervisors", SUPERVISORS),
    ):
        print(write(name, cells))
