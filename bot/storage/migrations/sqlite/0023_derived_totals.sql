-- What the whole-shop jobs ask of every customer (balance, purchases, spend, the last
-- purchase) is kept in the customer's row, so that a query over 100,000 customers reads it
-- instead of summing a million ledger rows and sales. Triggers keep it: it changes in the very
-- transaction that appends to the ledger or records or voids a sale, whichever code does it.
-- The ledger stays the truth; these columns are derived from it and can be rebuilt from it.
ALTER TABLE customers ADD COLUMN balance INTEGER NOT NULL DEFAULT 0;
ALTER TABLE customers ADD COLUMN visits INTEGER NOT NULL DEFAULT 0;
ALTER TABLE customers ADD COLUMN spend_minor INTEGER NOT NULL DEFAULT 0;
ALTER TABLE customers ADD COLUMN last_sale_id INTEGER;
ALTER TABLE customers ADD COLUMN last_purchase_at TEXT;

UPDATE customers SET balance = totals.balance
FROM (SELECT customer_id, SUM(delta) AS balance FROM points_ledger GROUP BY customer_id) AS totals
WHERE totals.customer_id = customers.id;

UPDATE customers SET visits = bought.visits, spend_minor = bought.spend,
    last_sale_id = bought.last_sale_id, last_purchase_at = bought.last_purchase_at
FROM (SELECT customer_id, COUNT(*) AS visits, SUM(amount_minor) AS spend,
             MAX(id) AS last_sale_id, MAX(created_at) AS last_purchase_at
      FROM sales WHERE voided_at IS NULL GROUP BY customer_id) AS bought
WHERE bought.customer_id = customers.id;

CREATE TRIGGER points_ledger_balance AFTER INSERT ON points_ledger
BEGIN
    UPDATE customers SET balance = balance + NEW.delta WHERE id = NEW.customer_id;
END;

CREATE TRIGGER sales_recorded AFTER INSERT ON sales WHEN NEW.voided_at IS NULL
BEGIN
    UPDATE customers SET visits = visits + 1, spend_minor = spend_minor + NEW.amount_minor,
        last_sale_id = MAX(COALESCE(last_sale_id, 0), NEW.id),
        last_purchase_at = MAX(COALESCE(last_purchase_at, ''), NEW.created_at)
    WHERE id = NEW.customer_id;
END;

CREATE TRIGGER sales_voided AFTER UPDATE OF voided_at ON sales
WHEN OLD.voided_at IS NULL AND NEW.voided_at IS NOT NULL
BEGIN
    UPDATE customers SET visits = visits - 1, spend_minor = spend_minor - OLD.amount_minor,
        last_sale_id = (SELECT MAX(id) FROM sales
                        WHERE customer_id = OLD.customer_id AND voided_at IS NULL),
        last_purchase_at = (SELECT MAX(created_at) FROM sales
                            WHERE customer_id = OLD.customer_id AND voided_at IS NULL)
    WHERE id = OLD.customer_id;
END;

-- Tiers count the last year's purchase points of every customer: this index answers that
-- from the year's slice alone, without reading the table.
DROP INDEX points_ledger_created;
CREATE INDEX points_ledger_created ON points_ledger (created_at, reason, customer_id, delta);
CREATE INDEX customers_last_purchase ON customers (last_purchase_at);
