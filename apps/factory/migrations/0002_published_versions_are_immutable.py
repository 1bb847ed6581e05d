"""Published agent versions and policy pack versions can never be changed or deleted.

Enforced by the database, so no path (service, admin, API, raw SQL) can
rewrite history. Drafts stay editable; publishing is the last allowed update.
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION factory_refuse_published_change() RETURNS trigger AS $$
BEGIN
    IF OLD.status = 'published' THEN
        RAISE EXCEPTION 'published version % of % is immutable', OLD.version, TG_TABLE_NAME
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""

TRIGGER = """
CREATE TRIGGER {table}_immutable_when_published
BEFORE UPDATE OR DELETE ON {table}
FOR EACH ROW EXECUTE FUNCTION factory_refuse_published_change();
"""

TABLES = ["factory_agentversion", "factory_policypackversion"]


class Migration(migrations.Migration):
    dependencies = [("factory", "0001_initial")]

    operations = [
        migrations.RunSQL(FUNCTION, "DROP FUNCTION IF EXISTS factory_refuse_published_change() CASCADE;"),
        *[
            migrations.RunSQL(TRIGGER.format(table=table), f"DROP TRIGGER IF EXISTS {table}_immutable_when_published ON {table};")
            for table in TABLES
        ],
    ]
