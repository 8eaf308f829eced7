-- Every point taken from a balance (redemptions, expiries, corrections) is kept in the
-- customer's row beside the balance of 0023: expiry takes spending from the oldest earnings
-- first, and reads how much was spent here instead of summing the whole ledger every day.
ALTER TABLE customers ADD COLUMN points_spent BIGINT NOT NULL DEFAULT 0;

UPDATE customers SET points_spent = taken.points
FROM (SELECT customer_id, -SUM(delta) AS points FROM points_ledger WHERE delta < 0
      GROUP BY customer_id) AS taken
WHERE taken.customer_id = customers.id;

-- Once per statement over the rows it added, not once per row: a job that appends tens of
-- thousands of rows (expiry, birthdays) updates each customer once, in one join; a sale's one
-- row costs the same as before.
DROP TRIGGER points_ledger_balance ON points_ledger;
DROP FUNCTION add_to_balance();
CREATE FUNCTION add_to_balances() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE customers SET balance = customers.balance + added.delta,
        points_spent = customers.points_spent + added.spent
    FROM (SELECT customer_id, SUM(delta) AS delta, SUM(GREATEST(-delta, 0)) AS spent
          FROM added_rows GROUP BY customer_id) AS added
    WHERE customers.id = added.customer_id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER points_ledger_balance AFTER INSERT ON points_ledger
    REFERENCING NEW TABLE AS added_rows FOR EACH STATEMENT EXECUTE FUNCTION add_to_balances();
