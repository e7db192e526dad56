-- A paid or shipped order must have at least one line: an empty one means a migration or the
-- checkout lost data. The check passes when no rows come back.
SELECT o.id, o.customer, o.status
FROM orders o
WHERE o.status IN ('paid', 'shipped')
  AND NOT EXISTS (SELECT 1 FROM order_items oi WHERE oi.order_id = o.id);
