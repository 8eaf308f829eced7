-- Every point taken from a balance (redemptions, expiries, corrections) is kept in the
-- customer's row beside the balance of 0023: expiry takes spending from the oldest earnings
-- first, and reads how much was spent here instead of summing the whole ledger every day.
ALTER TABLE customers ADD COLUMN points_spent INTEGER NOT NULL DEFAULT 0;

UPDATE customers SET points_spent = taken.points
FROM (SELECT customer_id, -SUM(delta) AS points FROM points_ledger WHERE delta < 0
      GROUP BY customer_id) AS taken
WHERE taken.customer_id = customers.id;

DROP TRIGGER points_ledger_balance;
CREATE TRIGGER points_ledger_balance AFTER INSERT ON points_ledger
BEGIN
    UPDATE customers SET balance = balance + NEW.delta,
        points_spent = points_spent + MAX(-NEW.delta, 0)
    WHERE id = NEW.customer_id;
END;
