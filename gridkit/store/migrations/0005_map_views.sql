-- gridkit schema revision 5: the map views from the database (gridkit.store.pgviews).
--
-- 1. Map search matches `lower(unit_id || ' ' || name) LIKE '%q%'`: a trigram index
--    (pg_trgm, shipped with Debian's postgresql-15; a "trusted" extension, so the
--    database's owner may create it without being a superuser) makes it an indexed
--    query instead of a scan of the units. Without the extension (not installed, or
--    no right to create it) this revision still applies: a NOTICE says so, search
--    scans, and gridkit_search_index() makes the index once the extension is there.
-- 2. The compliance view's per-unit results, computed by the library's rule
--    (gridkit.ops.patrol_compliance) once per scope, period and data version by
--    whichever server process asks first, and read by every process's viewport
--    queries (UNLOGGED: a cache, emptied by a crash, computed again on demand).
DO $$ BEGIN
    BEGIN  -- a subtransaction: its failure leaves the revision going on
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'gridkit: pg_trgm not created (%): map search scans the units', SQLERRM;
    END;
END $$;

-- the index the search query uses (same expression as gridkit.store.pgviews.search);
-- true when it is there. Called here and by the first map view (units loaded later).
CREATE OR REPLACE FUNCTION gridkit_search_index() RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    have_name boolean;
BEGIN
    IF to_regclass('units') IS NULL
       OR NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm')
       OR NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('units')
                      AND attname = 'unit_id' AND NOT attisdropped) THEN
        RETURN false;
    END IF;
    IF to_regclass('gridkit_units_search') IS NOT NULL THEN
        RETURN true;
    END IF;
    have_name := EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('units')
                         AND attname = 'name' AND NOT attisdropped);
    IF have_name THEN
        EXECUTE 'CREATE INDEX IF NOT EXISTS gridkit_units_search ON units USING gin '
                '(lower(unit_id::text || '' '' || coalesce(name::text, '''')) gin_trgm_ops)';
    ELSE
        EXECUTE 'CREATE INDEX IF NOT EXISTS gridkit_units_search ON units USING gin '
                '(lower(unit_id::text) gin_trgm_ops)';
    END IF;
    RETURN true;
END $$;

SELECT gridkit_search_index();

CREATE UNLOGGED TABLE IF NOT EXISTS gridkit_view_stamps (
    view    text PRIMARY KEY,         -- 'compliance|<scope>|<period>|<layer versions>'
    family  text NOT NULL,            -- 'compliance|<scope>|<period>'
    made_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNLOGGED TABLE IF NOT EXISTS gridkit_view_results (
    view    text NOT NULL,
    unit_id text NOT NULL,
    s       text NOT NULL,            -- the unit's class in the view
    q       bigint NOT NULL,          -- patrols required
    d       bigint NOT NULL,          -- patrols done (at most q)
    PRIMARY KEY (view, unit_id)
);
