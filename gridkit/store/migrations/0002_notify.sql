-- gridkit schema revision 2: a layer's new version is announced (NOTIFY gridkit_layers,
-- payload the layer's name) when its transaction commits, so every server process drops
-- its cached pages at once instead of at its next poll of gridkit_layer_versions.
CREATE OR REPLACE FUNCTION gridkit_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO gridkit_layer_versions AS v (layer, version) VALUES (TG_TABLE_NAME, 1)
    ON CONFLICT (layer) DO UPDATE SET version = v.version + 1;
    PERFORM pg_notify('gridkit_layers', TG_TABLE_NAME);
    RETURN NULL;
END $$;

-- the service's idempotency keys and report ids are kept unique by the database
-- across processes: see gridkit.store.postgis.UNIQUE (indexes made with the tables)
