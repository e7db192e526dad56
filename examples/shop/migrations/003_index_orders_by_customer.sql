-- An index on a live table: built CONCURRENTLY so writes to orders are never blocked, which
-- PostgreSQL only allows outside a transaction. IF NOT EXISTS makes a retry after a failed
-- build safe (drop the INVALID index first: see packages/migrate/README.md).

-- migrate:up
-- migrate:no-transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_created_at_idx
  ON orders (customer, created_at DESC);

-- migrate:down
-- migrate:no-transaction
DROP INDEX CONCURRENTLY IF EXISTS orders_customer_created_at_idx;
