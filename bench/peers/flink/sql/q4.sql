-- q4 Average price for a category: the maximum in-time bid of each auction, averaged per
-- category (SPEC.md §3.2). Updating: in streaming mode only the blackhole sink can take it;
-- run.sh writes its final result in batch mode. The Flink Nexmark project names the sink's
-- columns (id, final); the values are (category, avg), which is what they are called here.
CREATE TABLE nexmark_q4 (
    category  BIGINT,
    `avg`  BIGINT
) WITH (${SINK});

INSERT INTO nexmark_q4
SELECT Q.category, AVG(Q.final)
FROM (
    SELECT MAX(B.price) AS final, A.category
    FROM auction A, bid B
    WHERE A.id = B.auction AND B.`dateTime` BETWEEN A.`dateTime` AND A.expires
    GROUP BY A.id, A.category
) Q
GROUP BY Q.category;
