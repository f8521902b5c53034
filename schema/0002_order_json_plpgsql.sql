-- 0002_order_json_plpgsql: the order snapshot of every result event, as
-- PL/pgSQL so its query plans are cached per session (a SQL-language
-- function with a FROM clause is planned again on every call).
CREATE OR REPLACE FUNCTION orderd_order_json(p_id uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    o orders;
    items jsonb;
BEGIN
    SELECT * INTO o FROM orders WHERE id = p_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT COALESCE(jsonb_agg(jsonb_build_object(
               'product_id', i.product_id, 'variant_id', i.variant_id,
               'sku', i.sku, 'name', i.name, 'variant_name', i.variant_name,
               'quantity', i.quantity,
               'unit_price_cents', i.unit_price_cents) ORDER BY i.line_no),
           '[]'::jsonb)
      INTO items FROM order_items i WHERE i.order_id = p_id;
    RETURN jsonb_build_object(
        'id', o.id, 'number', o.number, 'status', o.status,
        'customer_id', o.customer_id, 'currency', o.currency,
        'subtotal_cents', o.subtotal_cents, 'tax_country', o.tax_country,
        'tax_rate_bps', o.tax_rate_bps, 'tax_cents', o.tax_cents,
        'total_cents', o.total_cents, 'expires_at', o.expires_at,
        'items', items);
END $$;
