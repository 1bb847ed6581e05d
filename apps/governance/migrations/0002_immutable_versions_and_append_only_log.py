"""Published ruleset versions are immutable and the decision log is append-only, enforced by the database.

A tenant app: these statements run in every client schema (and the template
schema new clients are cloned from), with that schema first on the search
path, so each schema gets its own functions and its triggers call them.
The only change a published version accepts is moving its active flag.
"""

from django.db import migrations

FUNCTIONS = """
CREATE OR REPLACE FUNCTION governance_refuse_published_change() RETURNS trigger AS $$
BEGIN
    IF OLD.status = 'published' THEN
        IF TG_OP = 'UPDATE' AND (to_jsonb(NEW) - 'is_active') = (to_jsonb(OLD) - 'is_active') THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'published ruleset version % is immutable', OLD.number
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION governance_refuse_log_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the decision log is append-only (% refused)', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER governance_rulesetversion_immutable_when_published
BEFORE UPDATE OR DELETE ON governance_rulesetversion
FOR EACH ROW EXECUTE FUNCTION governance_refuse_published_change();

CREATE TRIGGER governance_decisionlog_append_only
BEFORE UPDATE OR DELETE ON governance_decisionlog
FOR EACH ROW EXECUTE FUNCTION governance_refuse_log_change();
"""

REVERSE = """
DROP TRIGGER IF EXISTS governance_decisionlog_append_only ON governance_decisionlog;
DROP TRIGGER IF EXISTS governance_rulesetversion_immutable_when_published ON governance_rulesetversion;
DROP FUNCTION IF EXISTS governance_refuse_log_change();
DROP FUNCTION IF EXISTS governance_refuse_published_change();
"""


class Migration(migrations.Migration):
    dependencies = [("governance", "0001_initial")]

    operations = [migrations.RunSQL(FUNCTIONS, REVERSE)]
