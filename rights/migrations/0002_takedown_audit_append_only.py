"""The takedown audit trail is append-only: on PostgreSQL a trigger refuses every delete and
every update of an event, except the one the database itself makes when an actor's account is
deleted (actor set to null, nothing else changed)."""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION rights_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'the takedown audit trail is append-only: events are never deleted';
    END IF;
    IF NEW.id IS DISTINCT FROM OLD.id
       OR NEW.request_id IS DISTINCT FROM OLD.request_id
       OR NEW.action IS DISTINCT FROM OLD.action
       OR NEW.why IS DISTINCT FROM OLD.why
       OR NEW.details::text IS DISTINCT FROM OLD.details::text
       OR NEW.created_at IS DISTINCT FROM OLD.created_at
       OR (NEW.actor_id IS DISTINCT FROM OLD.actor_id AND NEW.actor_id IS NOT NULL) THEN
        RAISE EXCEPTION 'the takedown audit trail is append-only: events are never changed';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS rights_auditevent_append_only ON rights_auditevent;
CREATE TRIGGER rights_auditevent_append_only
    BEFORE UPDATE OR DELETE ON rights_auditevent
    FOR EACH ROW EXECUTE FUNCTION rights_auditevent_append_only();
"""

REVERSE = """
DROP TRIGGER IF EXISTS rights_auditevent_append_only ON rights_auditevent;
DROP FUNCTION IF EXISTS rights_auditevent_append_only();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTION)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REVERSE)


class Migration(migrations.Migration):
    dependencies = [("rights", "0001_takedown")]

    operations = [migrations.RunPython(forward, backward)]
