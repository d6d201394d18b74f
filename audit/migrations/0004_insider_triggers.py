"""On PostgreSQL, hold the chain against a database insider, not only against the application.

- TRUNCATE of the events or the head is refused (a statement-level trigger: row triggers never see TRUNCATE).
- An event may only be inserted at the head: its seq is the head's + 1 and it points at the head's hash.
- The head is never deleted and never moves back: an UPDATE either keeps it as it is (the lock ``audit_log``
  takes) or moves it forward onto the newest event, by exactly the events appended since.
- At commit (a deferred constraint trigger) every event lies within the head: no row beyond it.

A superuser (or the tables' owner) can still disable triggers; that is what the signatures and the anchors in
the backup store are for: ``audit_verify`` names what was done. In production, let migrations run as the
tables' owner and the application as a role that does not own them (README, "Audit trail").
"""

from django.db import migrations

GENESIS = "0" * 64

CREATE = f"""
CREATE OR REPLACE FUNCTION audit_refuse_truncate() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: TRUNCATE refused', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_truncate();
CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_auditchainhead
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_truncate();

CREATE OR REPLACE FUNCTION audit_event_check_append() RETURNS trigger AS $$
DECLARE
    head_seq bigint;
    head_hash varchar;
BEGIN
    SELECT seq, hash INTO head_seq, head_hash FROM audit_auditchainhead WHERE id = 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'audit event #% refused: the chain head is missing', NEW.seq
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.seq <> head_seq + 1 OR NEW.prev_hash <> head_hash THEN
        RAISE EXCEPTION 'audit event #% refused: events are appended at the chain head (#%) only', NEW.seq, head_seq
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_event_append_at_head BEFORE INSERT ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_event_check_append();

CREATE OR REPLACE FUNCTION audit_head_check() RETURNS trigger AS $$
DECLARE
    newest bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'audit_auditchainhead: DELETE refused' USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT max(seq) INTO newest FROM audit_auditevent;
    IF TG_OP = 'INSERT' THEN
        IF EXISTS (SELECT 1 FROM audit_auditchainhead WHERE id = NEW.id) THEN
            RETURN NEW;  -- two first writers raced: the primary key refuses this one, get_or_create re-reads
        END IF;
        IF NEW.id <> 1 OR NEW.seq <> 0 OR NEW.hash <> '{GENESIS}' OR newest IS NOT NULL THEN
            RAISE EXCEPTION 'audit_auditchainhead: only the genesis head of an empty chain may be inserted'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.id <> OLD.id THEN
        RAISE EXCEPTION 'audit_auditchainhead: its id is fixed' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.seq = OLD.seq AND NEW.hash = OLD.hash AND NEW.mac = OLD.mac THEN
        RETURN NEW;  -- the lock audit_log takes before appending
    END IF;
    IF NEW.seq <= OLD.seq THEN
        RAISE EXCEPTION 'audit_auditchainhead: the head only moves forward (#% -> #% refused)', OLD.seq, NEW.seq
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF newest IS DISTINCT FROM NEW.seq
       OR NOT EXISTS (SELECT 1 FROM audit_auditevent WHERE seq = NEW.seq AND hash = NEW.hash)
       OR (SELECT count(*) FROM audit_auditevent WHERE seq > OLD.seq) <> NEW.seq - OLD.seq THEN
        RAISE EXCEPTION 'audit_auditchainhead: the head moves onto the newest event only (#% refused)', NEW.seq
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_head_guard BEFORE INSERT OR UPDATE OR DELETE ON audit_auditchainhead
    FOR EACH ROW EXECUTE FUNCTION audit_head_check();

CREATE OR REPLACE FUNCTION audit_event_check_covered() RETURNS trigger AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM audit_auditchainhead WHERE id = 1 AND seq >= NEW.seq) THEN
        RAISE EXCEPTION 'audit event #% lies beyond the chain head at commit', NEW.seq
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER audit_event_within_head AFTER INSERT ON audit_auditevent
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION audit_event_check_covered();
"""

DROP = """
DROP TRIGGER IF EXISTS audit_event_within_head ON audit_auditevent;
DROP TRIGGER IF EXISTS audit_head_guard ON audit_auditchainhead;
DROP TRIGGER IF EXISTS audit_event_append_at_head ON audit_auditevent;
DROP TRIGGER IF EXISTS audit_head_no_truncate ON audit_auditchainhead;
DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_auditevent;
DROP FUNCTION IF EXISTS audit_event_check_covered();
DROP FUNCTION IF EXISTS audit_head_check();
DROP FUNCTION IF EXISTS audit_event_check_append();
DROP FUNCTION IF EXISTS audit_refuse_truncate();
"""


def create_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def drop_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_event_and_head_signatures")]
    operations = [migrations.RunPython(create_triggers, drop_triggers)]
