-- gridkit schema revision 6: a layer's NOTIFY carries its new version ("reports:42").
-- A server process that made that version itself (it knows it from its write) has
-- nothing to look up; before, every write of a process made it poll the versions
-- table once more (a round trip per batch of reports). Another process's version, or
-- a payload without one (a server of an earlier revision), is polled as before.
CREATE OR REPLACE FUNCTION gridkit_bump() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    made bigint;
BEGIN
    INSERT INTO gridkit_layer_versions AS v (layer, version, rewritten)
    VALUES (TG_TABLE_NAME, 1, CASE WHEN TG_OP = 'INSERT' THEN 0 ELSE 1 END)
    ON CONFLICT (layer) DO UPDATE SET version = v.version + 1,
        rewritten = CASE WHEN TG_OP = 'INSERT' THEN v.rewritten ELSE v.version + 1 END
    RETURNING v.version INTO made;
    PERFORM pg_notify('gridkit_layers', TG_TABLE_NAME || ':' || made);
    RETURN NULL;
END $$;
