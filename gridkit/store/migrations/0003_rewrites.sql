-- gridkit schema revision 3: each layer also records the last version made by a
-- statement other than INSERT (an UPDATE, DELETE or TRUNCATE, or the table made
-- again). A server process holding a layer at version v whose rewrites are all at or
-- before v knows the layer only grew since: it reads the new rows alone (fid > the
-- last it holds, checked against the count) instead of the whole table.
ALTER TABLE gridkit_layer_versions ADD COLUMN rewritten bigint NOT NULL DEFAULT 0;
UPDATE gridkit_layer_versions SET rewritten = version;  -- history unknown: rewritten

CREATE OR REPLACE FUNCTION gridkit_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO gridkit_layer_versions AS v (layer, version, rewritten)
    VALUES (TG_TABLE_NAME, 1, CASE WHEN TG_OP = 'INSERT' THEN 0 ELSE 1 END)
    ON CONFLICT (layer) DO UPDATE SET version = v.version + 1,
        rewritten = CASE WHEN TG_OP = 'INSERT' THEN v.rewritten ELSE v.version + 1 END;
    PERFORM pg_notify('gridkit_layers', TG_TABLE_NAME);
    RETURN NULL;
END $$;
