-- Copies the graph of schema bench into the extension's tables: friendships and blocks, and the
-- action log of the friendships whose (a + b) % 2 = :part.  run.sh runs part 0 after the
-- friendships in one session and part 1 in another (after load_reference.sql), so that both
-- cores work; every history stays in one session, so seq still grows along each history.
--
-- session_replication_role = replica keeps this session's triggers from firing: the NOTIFY
-- triggers would send one event per row, and the foreign-key triggers would look each action's
-- friendship up one row at a time.  The rows come from bench.*, where every action has its
-- friendship; run.sh checks that afterwards.  Needs a superuser, as run.sh has.

\set ON_ERROR_STOP 1
SET session_replication_role = replica;

\if :rows
INSERT INTO social.friendships (id, address_requester, address_requested, is_active, created_at,
								updated_at, last_action, last_actor, last_action_id)
SELECT id, address_requester, address_requested, is_active, created_at, updated_at, last_action,
	   last_actor, last_action_id
FROM bench.friendships ORDER BY created_at;

INSERT INTO social.blocks (id, blocker_address, blocked_address, blocked_at)
SELECT id, blocker_address, blocked_address, blocked_at FROM bench.blocks;
INSERT INTO social.block_actions (id, action, blocker_address, blocked_address, "timestamp")
SELECT md5('social-bench-ba:' || id)::uuid, 'block', blocker_address, blocked_address, blocked_at
FROM bench.blocks ORDER BY blocked_at;
\endif

-- In time order, so that seq (a column default) follows the timestamps.
INSERT INTO social.friendship_actions (id, friendship_id, action, acting_user, target_user, metadata,
									   "timestamp")
SELECT x.id, x.friendship_id, x.action, ua.addr, ut.addr, x.metadata, x.ts
FROM bench.actions x
JOIN bench.users ua ON ua.n = x.actor
JOIN bench.users ut ON ut.n = x.target
WHERE (x.a + x.b) % 2 = :part
ORDER BY x.ts;
