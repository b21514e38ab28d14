-- gridkit schema revision 4: new reports are taken in by SQL, not from a copy of the
-- layer held in a server process (gridkit.store.postgis.ReportIntake). The next report
-- id continues after the highest R<digits> id stored, read from an expression index
-- in the intake's transaction (intakes of all processes run one at a time: an
-- advisory lock), so ids stay R0000001, R0000002, ... exactly as on a GeoPackage,
-- with no gaps from transactions rolled back (a sequence would leave them).
CREATE OR REPLACE FUNCTION gridkit_report_number(id text) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT substring(id FROM '^R([0-9]+)$')::numeric $$;

DO $$ BEGIN
    IF to_regclass('reports') IS NOT NULL AND EXISTS (
        SELECT 1 FROM pg_attribute
        WHERE attrelid = to_regclass('reports') AND attname = 'report_id' AND NOT attisdropped
    ) THEN
        CREATE INDEX IF NOT EXISTS reports_report_number_idx
            ON reports (gridkit_report_number(report_id));
    END IF;
END $$;
