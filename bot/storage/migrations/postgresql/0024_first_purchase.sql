-- The first purchase joins the derived totals of 0023: churn's typical gap between purchases
-- ((last - first) / (purchases - 1)) and /stats' "friends' first purchase" read it from the
-- customer's row instead of grouping a million sales.
ALTER TABLE customers ADD COLUMN first_purchase_at TEXT COLLATE "C";

UPDATE customers SET first_purchase_at = bought.first_purchase_at
FROM (SELECT customer_id, MIN(created_at) AS first_purchase_at
      FROM sales WHERE voided_at IS NULL GROUP BY customer_id) AS bought
WHERE bought.customer_id = customers.id;

CREATE OR REPLACE FUNCTION count_sale() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE customers SET visits = visits + 1, spend_minor = spend_minor + NEW.amount_minor,
        last_sale_id = GREATEST(last_sale_id, NEW.id),
        last_purchase_at = GREATEST(last_purchase_at, NEW.created_at),
        first_purchase_at = LEAST(first_purchase_at, NEW.created_at)
    WHERE id = NEW.customer_id;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION uncount_sale() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE customers SET visits = visits - 1, spend_minor = spend_minor - OLD.amount_minor,
        last_sale_id = (SELECT MAX(id) FROM sales
                        WHERE customer_id = OLD.customer_id AND voided_at IS NULL),
        last_purchase_at = (SELECT MAX(created_at) FROM sales
                            WHERE customer_id = OLD.customer_id AND voided_at IS NULL),
        first_purchase_at = (SELECT MIN(created_at) FROM sales
                             WHERE customer_id = OLD.customer_id AND voided_at IS NULL)
    WHERE id = OLD.customer_id;
    RETURN NULL;
END;
$$;
