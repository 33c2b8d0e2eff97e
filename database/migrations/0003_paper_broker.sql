-- 0003: Stage 2 paper broker state (issue 5).
-- The paper account (cash) is one row; orders and fills gain the columns the
-- daily ticket and the fill rule need; trading_state keeps small JSON values
-- that must survive a restart (safe mode).

CREATE TABLE paper_account (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    initial_cash  REAL NOT NULL,
    cash          REAL NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

ALTER TABLE orders ADD COLUMN target_weight REAL;
ALTER TABLE orders ADD COLUMN client_order_id TEXT;
ALTER TABLE orders ADD COLUMN broker_order_id TEXT;
CREATE INDEX orders_session ON orders(session, symbol);

-- price_source: 'next_open' (first stored bar after the order's session) or
-- 'last_close' (no later bar stored yet): see trading/brokers.py.
ALTER TABLE fills ADD COLUMN price_source TEXT;
ALTER TABLE fills ADD COLUMN slippage_bps REAL;
CREATE INDEX fills_session ON fills(session);

CREATE TABLE trading_state (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL,      -- JSON
    updated_at  TEXT NOT NULL
);
