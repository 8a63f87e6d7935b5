-- q3 Local item suggestion: unwindowed inner join of category-10 auctions with their sellers
-- from OR, ID or CA (SPEC.md §3.2). Append-only (inner join of two append streams).
CREATE TABLE nexmark_q3 (
    name  VARCHAR,
    city  VARCHAR,
    state  VARCHAR,
    id  BIGINT
) WITH (${SINK});

INSERT INTO nexmark_q3
SELECT P.name, P.city, P.state, A.id
FROM auction AS A INNER JOIN person AS P ON A.seller = P.id
WHERE A.category = 10 AND (P.state = 'OR' OR P.state = 'ID' OR P.state = 'CA');
