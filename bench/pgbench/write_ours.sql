-- One friendship request on a fresh pair through social.upsert_friendship: every rule (address
-- checks, blocks, rate limits, request cap, state machine, user locks) and the NOTIFY trigger.
SELECT r.action_id, r.friendship_id, r.created_at, r.status
FROM bench.write_pairs w, LATERAL social.upsert_friendship(w.actor, w.target, 'request') r
WHERE w.n = (SELECT nextval('bench.write_seq_ours'));
