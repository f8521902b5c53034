-- 0050_runtime_role: least privilege for `orderd run`. The schema owner
-- (the role `orderd migrate` connects as) keeps DDL; the worker and the
-- other runtime subcommands connect as a login role that is a member of the
-- NOLOGIN group role orderd_runtime, which owns nothing and holds only the
-- grants below (docs/operations.md, "PostgreSQL roles", explains each).
--
-- The group role is cluster-wide, so an administrator normally creates it
-- once, before the first migration (scripts/pg does); this migration then
-- only grants, and the owner needs neither SUPERUSER nor CREATEROLE. An
-- owner that may create roles creates it here when it is missing; any other
-- owner stops with an error that says what to run, rather than leaving a
-- schema the worker cannot use.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderd_runtime') THEN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = current_user
                          AND (rolsuper OR rolcreaterole)) THEN
            RAISE EXCEPTION 'role "orderd_runtime" does not exist and role "%" may not create it',
                current_user
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'As an administrator run CREATE ROLE orderd_runtime NOLOGIN, then orderd migrate again.';
        END IF;
        CREATE ROLE orderd_runtime NOLOGIN;
    END IF;
END $$;

-- Nobody but the owner creates objects in the schema (PostgreSQL 15 already
-- does this for new databases; older clusters and upgraded ones do not).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO orderd_runtime;

-- Start from read and write on every table, then take away what each table
-- must never see from the worker. Granting on ALL TABLES also covers tables
-- that migrations before this one added.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public
    TO orderd_runtime;
-- the migration ledger is the owner's
REVOKE ALL ON schema_migrations FROM orderd_runtime;
-- reference data: the state machine's statuses and transitions (the
-- transition guard trigger reads them as the worker)
REVOKE INSERT, UPDATE, DELETE ON order_statuses, order_transitions
    FROM orderd_runtime;
-- append-only: order lines are receipts, history and ledger are the
-- record that stock = sum of the ledger is checked against
REVOKE UPDATE, DELETE ON order_items, order_status_history, stock_ledger
    FROM orderd_runtime;
-- read model rows are never deleted (products and variants are soft
-- deleted, orders end in a final status) and offsets only move
REVOKE DELETE ON products, product_variants, tax_rates, orders,
    consumer_offsets FROM orderd_runtime;

-- nextval() for bigserial ids and order numbers; setval() (UPDATE) is not
-- needed and could make order numbers repeat
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO orderd_runtime;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO orderd_runtime;

-- Objects a later migration creates (as the owner, who runs this one) get
-- the same starting grants; a migration that adds an append-only or
-- reference table narrows them with REVOKE, as above.
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO orderd_runtime;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT USAGE ON SEQUENCES TO orderd_runtime;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT EXECUTE ON FUNCTIONS TO orderd_runtime;
