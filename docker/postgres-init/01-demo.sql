-- Demo schema and rows for the tidemark quickstart.
-- Used by docker-compose.yml (mounted into /docker-entrypoint-initdb.d, runs once in database
-- tidemark_demo as user tidemark) and by scripts/quickstart.sh (psql -f, on every run).
-- Idempotent: safe to run any number of times.

CREATE TABLE IF NOT EXISTS public.customers (
    id         serial PRIMARY KEY,
    name       text NOT NULL,
    email      text,
    created_at timestamptz DEFAULT now()
);

CREATE TABLE IF NOT EXISTS public.orders (
    id          bigserial PRIMARY KEY,
    customer_id int REFERENCES public.customers (id),
    amount      numeric(12, 2),
    status      text,
    created_at  timestamptz DEFAULT now()
);

-- Full old rows in the WAL, so updates and deletes carry a complete "before".
ALTER TABLE public.customers REPLICA IDENTITY FULL;
ALTER TABLE public.orders REPLICA IDENTITY FULL;

INSERT INTO public.customers (id, name, email) VALUES
    (1, 'Ada Lovelace',     'ada@example.com'),
    (2, 'Alan Turing',      'alan@example.com'),
    (3, 'Grace Hopper',     'grace@example.com'),
    (4, 'Edsger Dijkstra',  NULL)
ON CONFLICT (id) DO NOTHING;

INSERT INTO public.orders (id, customer_id, amount, status) VALUES
    (1, 1,   19.99, 'paid'),
    (2, 1,  250.00, 'shipped'),
    (3, 2,    5.50, 'new'),
    (4, 3, 1234.56, 'paid')
ON CONFLICT (id) DO NOTHING;

-- The rows above have explicit ids: move each sequence past them (never backwards).
DO $$
DECLARE
    t text;
    seq text;
BEGIN
    FOREACH t IN ARRAY ARRAY['customers', 'orders'] LOOP
        seq := pg_get_serial_sequence('public.' || t, 'id');
        EXECUTE format(
            'SELECT setval(%L, GREATEST((SELECT coalesce(max(id), 1) FROM public.%I), '
            'coalesce(pg_sequence_last_value(%L::regclass), 1)))', seq, t, seq);
    END LOOP;
END
$$;
