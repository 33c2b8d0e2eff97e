-- 0008: no retry can double an order (issue 9).
-- Every order Stage 2 sends carries a client_order_id made of its session,
-- symbol and ordinal within that session (trading/agent.py); the store
-- refuses a second order with the same id, so a cycle retried after a
-- crash, or a second daemon on the same store, cannot record (or, live,
-- send) the same order twice.  Live orders are recorded as SUBMITTING
-- before they are sent and updated with the broker's answer.
CREATE UNIQUE INDEX orders_client_order_id ON orders(client_order_id) WHERE client_order_id IS NOT NULL;
