-- q1 Currency conversion: each bid's price in euros, price × 0.908 as an exact
-- DECIMAL(23, 3) (SPEC.md §3.2).
CREATE TABLE nexmark_q1 (
    auction  BIGINT,
    bidder  BIGINT,
    price  DECIMAL(23, 3),
    `dateTime`  TIMESTAMP(3),
    extra  VARCHAR
) WITH (${SINK});

INSERT INTO nexmark_q1
SELECT auction, bidder, 0.908 * price AS price, `dateTime`, extra FROM bid;
