-- 0001_init: the whole orderd data model (contract v1 read model plus the
-- worker's bookkeeping: offsets, dedup rows, outbox, deferred commands)

CREATE TABLE consumer_offsets (
    grp         text   NOT NULL,
    topic       text   NOT NULL,
    partition   int    NOT NULL,
    next_offset bigint NOT NULL CHECK (next_offset >= 0),
    -- after orderd replay: offsets below this were applied before, so their
    -- duplicates are re-read quietly (no second result event)
    replay_until bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (grp, topic, partition)
);

CREATE TABLE processed_commands (
    dedup_key        text PRIMARY KEY,
    fingerprint      bytea NOT NULL,
    command_type     text,
    outcome          text NOT NULL
                     CHECK (outcome IN ('applied', 'rejected', 'deferred')),
    reason           text,
    result_event_id  uuid NOT NULL,
    order_id         uuid,
    source_topic     text,
    source_partition int,
    source_offset    bigint,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX processed_commands_created_at ON processed_commands (created_at);

CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    event_id     uuid NOT NULL UNIQUE,
    topic        text NOT NULL,
    key          bytea,
    payload      bytea NOT NULL,
    headers      jsonb,
    dedup_key    text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_dedup_key ON outbox (dedup_key);

CREATE TABLE products (
    id                  bigint PRIMARY KEY CHECK (id > 0),
    vendor_id           text NOT NULL,
    kind                text NOT NULL CHECK (kind IN ('simple', 'variant')),
    name                text NOT NULL,
    sku                 text NOT NULL,
    currency            char(3) NOT NULL,
    price_cents         bigint CHECK (price_cents >= 0),
    stock               bigint CHECK (stock >= 0),
    low_stock_threshold bigint NOT NULL DEFAULT 0 CHECK (low_stock_threshold >= 0),
    deleted_at          timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    -- a simple product has price and stock, a variant product neither
    CHECK ((kind = 'simple' AND stock IS NOT NULL)
        OR (kind = 'variant' AND price_cents IS NULL AND stock IS NULL))
);

CREATE TABLE product_variants (
    id          bigint PRIMARY KEY CHECK (id > 0),
    product_id  bigint NOT NULL REFERENCES products (id),
    name        text NOT NULL,
    sku         text NOT NULL,
    price_cents bigint CHECK (price_cents >= 0),
    stock       bigint NOT NULL CHECK (stock >= 0),
    deleted_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX product_variants_product ON product_variants (product_id, id);

CREATE TABLE tax_rates (
    country    char(2) PRIMARY KEY,
    rate_bps   int NOT NULL CHECK (rate_bps BETWEEN 0 AND 10000),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE order_statuses (
    status text PRIMARY KEY
);
INSERT INTO order_statuses VALUES ('pending'), ('paid'), ('processing'),
    ('shipped'), ('delivered'), ('refunded'), ('cancelled'), ('expired');

-- Mirror of the state machine table in handlers/fsm.c (a test keeps the two
-- equal); the trigger below refuses any other transition, even from
-- hand-written SQL.
CREATE TABLE order_transitions (
    from_status text NOT NULL REFERENCES order_statuses,
    to_status   text NOT NULL REFERENCES order_statuses,
    PRIMARY KEY (from_status, to_status)
);
INSERT INTO order_transitions VALUES
    ('pending', 'paid'), ('paid', 'processing'), ('processing', 'shipped'),
    ('shipped', 'delivered'), ('delivered', 'refunded'),
    ('pending', 'cancelled'), ('pending', 'expired'),
    ('paid', 'cancelled'), ('processing', 'cancelled');

CREATE SEQUENCE order_number_seq;

CREATE TABLE orders (
    id              uuid PRIMARY KEY,
    number          text NOT NULL UNIQUE,
    customer_id     text NOT NULL,
    status          text NOT NULL REFERENCES order_statuses,
    currency        char(3) NOT NULL,
    subtotal_cents  bigint NOT NULL CHECK (subtotal_cents >= 0),
    tax_country     char(2),
    tax_rate_bps    int NOT NULL CHECK (tax_rate_bps BETWEEN 0 AND 10000),
    tax_cents       bigint NOT NULL CHECK (tax_cents >= 0),
    total_cents     bigint NOT NULL CHECK (total_cents >= 0),
    payment_id      text,
    paid_cents      bigint,
    tracking_number text,
    dedup_key       text NOT NULL,
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_pending_expiry ON orders (expires_at) WHERE status = 'pending';
CREATE INDEX orders_customer ON orders (customer_id);

CREATE FUNCTION orders_guard_transition() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status AND NOT EXISTS (
        SELECT 1 FROM order_transitions
         WHERE from_status = OLD.status AND to_status = NEW.status) THEN
        RAISE EXCEPTION 'illegal order transition % -> %', OLD.status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    IF TG_OP = 'UPDATE' AND (NEW.subtotal_cents, NEW.tax_cents, NEW.total_cents,
        NEW.tax_rate_bps, NEW.currency) IS DISTINCT FROM
       (OLD.subtotal_cents, OLD.tax_cents, OLD.total_cents, OLD.tax_rate_bps,
        OLD.currency) THEN
        RAISE EXCEPTION 'orders are receipts: totals of order % cannot change', OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER orders_guard BEFORE UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_guard_transition();

CREATE TABLE order_items (
    order_id         uuid NOT NULL REFERENCES orders (id),
    line_no          int NOT NULL,
    product_id       bigint NOT NULL,
    variant_id       bigint,
    vendor_id        text NOT NULL,
    sku              text NOT NULL,
    name             text NOT NULL,
    variant_name     text,
    quantity         bigint NOT NULL CHECK (quantity > 0),
    unit_price_cents bigint NOT NULL CHECK (unit_price_cents >= 0),
    PRIMARY KEY (order_id, line_no)
);

CREATE TABLE order_status_history (
    id          bigserial PRIMARY KEY,
    order_id    uuid NOT NULL REFERENCES orders (id),
    from_status text,
    to_status   text NOT NULL,
    actor_role  text NOT NULL,
    actor_id    text NOT NULL,
    dedup_key   text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_status_history_order ON order_status_history (order_id, id);

CREATE TABLE stock_ledger (
    id         bigserial PRIMARY KEY,
    product_id bigint NOT NULL,
    variant_id bigint,
    delta      bigint NOT NULL,
    reason     text NOT NULL
               CHECK (reason IN ('initial', 'adjust', 'order', 'cancel',
                                 'expire', 'refund')),
    order_id   uuid,
    dedup_key  text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stock_ledger_item ON stock_ledger (product_id, variant_id);

CREATE TABLE deferred_commands (
    id            bigserial PRIMARY KEY,
    order_id      uuid NOT NULL,
    dedup_key     text NOT NULL UNIQUE,
    payload       bytea NOT NULL,
    msg_ts_us     bigint NOT NULL,
    source_topic  text NOT NULL,
    source_partition int NOT NULL,
    source_offset bigint NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deferred_commands_order ON deferred_commands (order_id, id);

-- The order as the result events show it (orders are receipts: read, never
-- recomputed).
CREATE FUNCTION orderd_order_json(p_id uuid) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', o.id, 'number', o.number, 'status', o.status,
        'customer_id', o.customer_id, 'currency', o.currency,
        'subtotal_cents', o.subtotal_cents, 'tax_country', o.tax_country,
        'tax_rate_bps', o.tax_rate_bps, 'tax_cents', o.tax_cents,
        'total_cents', o.total_cents,
        'expires_at', o.expires_at,
        'items', COALESCE((SELECT jsonb_agg(jsonb_build_object(
                'product_id', i.product_id, 'variant_id', i.variant_id,
                'sku', i.sku, 'name', i.name, 'variant_name', i.variant_name,
                'quantity', i.quantity,
                'unit_price_cents', i.unit_price_cents) ORDER BY i.line_no)
            FROM order_items i WHERE i.order_id = o.id), '[]'::jsonb))
    FROM orders o WHERE o.id = p_id
$$;
