-- Demo schema and rows for the tidemark quickstart, MySQL/MariaDB side.
-- Used by docker-compose.yml (mounted into /docker-entrypoint-initdb.d, runs once as root on the
-- first start) and by scripts/quickstart.sh (mariadb client as user tidemark, on every run).
-- Idempotent: safe to run any number of times. The grants for tidemark are in
-- 02-replication-grants.sql (compose only: the dev-env user already has every privilege).

CREATE TABLE IF NOT EXISTS tidemark_demo.inventory (
    id         INT PRIMARY KEY,
    sku        VARCHAR(40),
    qty        INT,
    price      DECIMAL(10, 2),
    updated_at TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- IGNORE: rows that exist already are left as they are (like ON CONFLICT DO NOTHING).
INSERT IGNORE INTO tidemark_demo.inventory (id, sku, qty, price) VALUES
    (1, 'WIDGET-RED',     120,   2.50),
    (2, 'WIDGET-BLUE',     75,   2.75),
    (3, 'GEAR-12T',        40,  14.90),
    (4, 'BEARING-608ZZ',  300,   0.85);

-- The signal table of the MySQL snapshot (watermarks and `tidemark snapshot` requests; see
-- README.md, "Snapshots of existing rows"). tidemark creates it itself when it may (CREATE on the
-- database); created here so the privileges it needs are only INSERT and UPDATE on it.
CREATE TABLE IF NOT EXISTS tidemark_demo.tidemark_signal (
    id   VARCHAR(255) NOT NULL PRIMARY KEY,
    type VARCHAR(32)  NOT NULL,
    data TEXT
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
