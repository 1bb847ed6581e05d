"""The audit trail is append-only, enforced by the database: UPDATE, DELETE and TRUNCATE are refused.

A tenant app: these statements run in every client schema (and the template schema new clients are
cloned from), with that schema first on the search path, so each schema gets its own functions and
its triggers call them. Only a superuser who disables the triggers can change a row, and the hash
chain (`services.audit_verify`) then shows where.

`audit_next_link` is the first half of an append in one round trip: it takes the client's append lock
(held to the end of the caller's transaction), then, in a statement of its own and so with a snapshot
taken after the lock was granted, reads the last event's seq and hash, and gives the event's data as
PostgreSQL will store it. The service hashes that and inserts the row.
"""

from django.db import migrations

FUNCTIONS = """
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only (% refused)', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION audit_next_link(
    lock_key bigint, payload text, OUT last_seq bigint, OUT last_hash text, OUT data text
) AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    -- A volatile function's statements each take a fresh snapshot: this one sees every append
    -- committed before the lock was granted.
    SELECT e.seq, e.hash INTO last_seq, last_hash FROM audit_auditevent AS e ORDER BY e.seq DESC LIMIT 1;
    data := payload::jsonb::text;
END;
$$ LANGUAGE plpgsql VOLATILE;

CREATE TRIGGER audit_auditevent_append_only
BEFORE UPDATE OR DELETE ON audit_auditevent
FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();

CREATE TRIGGER audit_auditevent_no_truncate
BEFORE TRUNCATE ON audit_auditevent
FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
"""

REVERSE = """
DROP TRIGGER IF EXISTS audit_auditevent_no_truncate ON audit_auditevent;
DROP TRIGGER IF EXISTS audit_auditevent_append_only ON audit_auditevent;
DROP FUNCTION IF EXISTS audit_refuse_change();
DROP FUNCTION IF EXISTS audit_next_link(bigint, text);
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunSQL(FUNCTIONS, REVERSE)]
