-- /forget must reach the audit log too: its rows stay (append-only), but the person's channel
-- id in `actor` may be replaced by a pseudonym, and nothing else may change.
DROP TRIGGER audit_log_no_update;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
WHEN NEW.actor NOT LIKE 'erased:%'
    OR NEW.action IS NOT OLD.action OR NEW.subject IS NOT OLD.subject
    OR NEW.details IS NOT OLD.details OR NEW.at IS NOT OLD.at
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
