"""The PostGIS schema's numbered SQL revisions (``NNNN_name.sql``), applied in order by
:func:`gridkit.store.postgis.upgrade`."""
