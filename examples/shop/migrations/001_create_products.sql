-- migrate:up
CREATE TABLE products (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  sku         text NOT NULL UNIQUE,
  name        text NOT NULL,
  price_cents integer NOT NULL CHECK (price_cents >= 0),
  created_at  timestamptz NOT NULL DEFAULT now()
);

INSERT INTO products (sku, name, price_cents) VALUES
  ('CUP-001', 'Espresso cup', 950),
  ('KTL-001', 'Pour-over kettle', 4200);

-- migrate:down
DROP TABLE products;
