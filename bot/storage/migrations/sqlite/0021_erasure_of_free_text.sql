-- /forget reaches what an owner wrote about the customer: an adjustment's reason in the ledger
-- note and in its audit row. Both tables stay append-only for everything else: the only change
-- allowed is erasing that text (the ledger's note to NULL, the audit row's details to NULL).
DROP TRIGGER points_ledger_no_update;
CREATE TRIGGER points_ledger_no_update BEFORE UPDATE ON points_ledger
WHEN NEW.note IS NOT NULL
    OR NEW.customer_id IS NOT OLD.customer_id OR NEW.delta IS NOT OLD.delta
    OR NEW.reason IS NOT OLD.reason OR NEW.actor IS NOT OLD.actor
    OR NEW.idempotency_key IS NOT OLD.idempotency_key OR NEW.created_at IS NOT OLD.created_at
BEGIN
    SELECT RAISE(ABORT, 'points_ledger is append-only');
END;
DROP TRIGGER audit_log_no_update;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
WHEN (NEW.actor IS NOT OLD.actor AND NEW.actor NOT LIKE 'erased:%')
    OR NEW.action IS NOT OLD.action OR NEW.subject IS NOT OLD.subject
    OR (NEW.details IS NOT OLD.details AND NEW.details IS NOT NULL) OR NEW.at IS NOT OLD.at
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
