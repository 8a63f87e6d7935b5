-- q2 Selection: bids on every 123rd auction id (SPEC.md §3.2).
CREATE TABLE nexmark_q2 (
    auction  BIGINT,
    price  BIGINT
) WITH (${SINK});

INSERT INTO nexmark_q2
SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0;
