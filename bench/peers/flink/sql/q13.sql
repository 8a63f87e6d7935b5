-- q13 Bounded side input join: each bid enriched with the side-input row whose key is
-- auction mod 10000 (SPEC.md §3.2). ${SIDE_INPUT_PATH} is a CSV file of 10 000 rows `k,k`
-- (run.sh writes it). The Flink Nexmark project reads the side input with the legacy
-- `connector.type = filesystem` table and a processing-time lookup join
-- (`FOR SYSTEM_TIME AS OF B.p_time`); Flink 2.x has neither the legacy connector nor a lookup
-- capability in the `filesystem` connector, so this is a regular inner join against the bounded
-- side table instead. Every bid matches exactly one side row, so the result rows are the same;
-- the cost differs (the join keeps both inputs in state; a lookup join keeps none).
CREATE TABLE side_input (
    key  BIGINT,
    `value`  VARCHAR
) WITH (
    'connector' = 'filesystem',
    'path' = '${SIDE_INPUT_PATH}',
    'format' = 'csv'
);

CREATE TABLE nexmark_q13 (
    auction  BIGINT,
    bidder  BIGINT,
    price  BIGINT,
    `dateTime`  TIMESTAMP(3),
    `value`  VARCHAR
) WITH (${SINK});

INSERT INTO nexmark_q13
SELECT B.auction, B.bidder, B.price, B.`dateTime`, S.`value`
FROM bid B
JOIN side_input S
ON MOD(B.auction, 10000) = S.key;
