-- gridkit schema revision 1: PostGIS, the revision table and the layer versions.
-- Every layer table gets the statement trigger gridkit_bump (added by the store when
-- it creates the table): any write (the service, `gridkit db load`, QGIS editing the
-- table directly) moves the layer's version, which is what response caches key on.
CREATE EXTENSION IF NOT EXISTS postgis;

CREATE TABLE gridkit_layer_versions (
    layer   text PRIMARY KEY,
    version bigint NOT NULL DEFAULT 0,
    seq     bigserial NOT NULL  -- creation order: the order layers are listed in
);

CREATE FUNCTION gridkit_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO gridkit_layer_versions AS v (layer, version) VALUES (TG_TABLE_NAME, 1)
    ON CONFLICT (layer) DO UPDATE SET version = v.version + 1;
    RETURN NULL;
END $$;
