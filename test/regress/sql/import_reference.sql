-- import_reference: social.import_reference(schema) on a fixture with the reference service's
-- schema (social-service-ea's migrations, before its unique-pair fix) and its known defects:
-- duplicate pair rows A->B and B->A with interleaved histories, mixed-case addresses, actions
-- with no friendship row, histories the state machine would not allow, invalid addresses, blocks
-- both ways, settings.  Imports, reads the result through the read API, reruns (nothing doubled),
-- catches up with a newer source, and imports a corrected pair.
DROP EXTENSION social;
CREATE EXTENSION social;
\set SHOW_CONTEXT never

\set alice '0xa11ce00000000000000000000000000000000001'
\set bob '0xb0b0000000000000000000000000000000000001'
\set carol '0xca40100000000000000000000000000000000001'
\set dave '0xda7e000000000000000000000000000000000001'
\set erin '0xe414000000000000000000000000000000000001'
\set frank '0xf4a4c00000000000000000000000000000000001'
\set gina '0x61a0000000000000000000000000000000000001'
\set hank '0x4a4c000000000000000000000000000000000001'
-- Checksummed-looking spellings of the same users.
\set ALICE '0xA11CE00000000000000000000000000000000001'
\set BOB '0xB0B0000000000000000000000000000000000001'
\set CAROL '0xCA40100000000000000000000000000000000001'
\set FRANK '0xF4A4C00000000000000000000000000000000001'

-- The reference's tables as its migrations leave them (friendships-table, friendships-history,
-- add-indexes, add-blocks, social-settings, add-indexes-for-get-requests-queries,
-- add-situation-reactions-visibility): no foreign key, uniqueness on the ordered pair only.
CREATE SCHEMA refdb;
CREATE TABLE refdb.friendships (
	id					uuid PRIMARY KEY,
	address_requester	varchar NOT NULL,
	address_requested	varchar NOT NULL,
	is_active			boolean NOT NULL DEFAULT false,
	created_at			timestamp NOT NULL DEFAULT now(),
	updated_at			timestamp NOT NULL DEFAULT now()
);
CREATE TABLE refdb.friendship_actions (
	id				uuid PRIMARY KEY,
	friendship_id	uuid NOT NULL,
	action			varchar NOT NULL,
	acting_user		varchar NOT NULL,
	metadata		json,
	"timestamp"		timestamp DEFAULT now()
);
CREATE TABLE refdb.blocks (
	id				uuid PRIMARY KEY,
	blocker_address	varchar NOT NULL,
	blocked_address	varchar NOT NULL,
	blocked_at		timestamp DEFAULT now()
);
CREATE TABLE refdb.social_settings (
	address								varchar(42) PRIMARY KEY,
	private_messages_privacy			varchar NOT NULL DEFAULT 'only_friends',
	blocked_users_messages_visibility	varchar NOT NULL DEFAULT 'show_messages',
	CONSTRAINT valid_private_messages_privacy
		CHECK (private_messages_privacy IN ('only_friends', 'all')),
	CONSTRAINT valid_blocked_users_messages_visibility
		CHECK (blocked_users_messages_visibility IN ('show_messages', 'do_not_show_messages'))
);
ALTER TABLE refdb.social_settings
	ADD COLUMN show_situation_reactions varchar NOT NULL DEFAULT 'show',
	ADD CONSTRAINT valid_show_situation_reactions CHECK (show_situation_reactions IN ('show', 'hide'));
CREATE INDEX friendships_address_requester ON refdb.friendships USING hash (address_requester);
CREATE INDEX friendships_address_requested ON refdb.friendships USING hash (address_requested);
ALTER TABLE refdb.friendships ADD CONSTRAINT unique_addresses
	UNIQUE (address_requester, address_requested);
CREATE INDEX friendships_address_requester_lower
	ON refdb.friendships (lower(address_requester) text_pattern_ops);
CREATE INDEX friendship_actions_friendship_id ON refdb.friendship_actions (friendship_id);
CREATE INDEX ON refdb.friendship_actions (friendship_id, "timestamp" DESC);
CREATE INDEX ON refdb.friendship_actions (lower(acting_user), action);
CREATE INDEX ON refdb.friendship_actions ("timestamp" DESC);
CREATE INDEX ON refdb.friendship_actions (lower(acting_user));
CREATE INDEX ON refdb.friendships (is_active, lower(address_requester), lower(address_requested));
CREATE INDEX ON refdb.blocks (blocker_address);
CREATE INDEX ON refdb.blocks (blocked_address);
CREATE UNIQUE INDEX ON refdb.blocks (blocker_address, blocked_address);

-- Friendship rows.  Ids say what they test: f1/f2 alice-bob both ways (merged, legal),
-- f3/f4 carol-dave both ways (crossed requests: refused), f5 an accept with no request,
-- f6 an invalid address, f7 no actions, f8 one user twice once lower-cased, f9 erin->bob a
-- pending request with a message, f10 alice-frank ended by blocks both ways, f11 gina-hank
-- friends in the source although gina blocks hank.
INSERT INTO refdb.friendships (id, address_requester, address_requested, is_active, created_at) VALUES
	('00000000-0000-0000-0000-0000000000f1', :'alice', :'bob', false, '2025-01-01 10:00'),
	('00000000-0000-0000-0000-0000000000f2', :'BOB', :'ALICE', true, '2025-01-01 10:01'),
	('00000000-0000-0000-0000-0000000000f3', :'carol', :'dave', false, '2025-01-01 11:00'),
	('00000000-0000-0000-0000-0000000000f4', :'dave', :'CAROL', false, '2025-01-01 11:00'),
	('00000000-0000-0000-0000-0000000000f5', :'alice', :'erin', true, '2025-01-01 12:00'),
	('00000000-0000-0000-0000-0000000000f6', :'alice', '0xnothex', false, '2025-01-01 12:00'),
	('00000000-0000-0000-0000-0000000000f7', :'dave', :'erin', false, '2025-01-01 12:00'),
	('00000000-0000-0000-0000-0000000000f8', :'alice', :'ALICE', false, '2025-01-01 12:00'),
	('00000000-0000-0000-0000-0000000000f9', :'erin', :'bob', false, '2025-01-01 13:00'),
	('00000000-0000-0000-0000-000000000f10', :'FRANK', :'alice', false, '2025-01-01 14:00'),
	('00000000-0000-0000-0000-000000000f11', :'gina', :'hank', true, '2025-01-01 15:00');
INSERT INTO refdb.friendship_actions (id, friendship_id, action, acting_user, metadata, "timestamp") VALUES
	-- alice-bob, interleaved between f1 and f2: request, reject, request, accept
	('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000f1', 'request', :'alice', '{"message": "hi bob"}', '2025-01-01 10:00'),
	('00000000-0000-0000-0000-0000000000a2', '00000000-0000-0000-0000-0000000000f2', 'reject', :'BOB', NULL, '2025-01-01 10:01'),
	('00000000-0000-0000-0000-0000000000a3', '00000000-0000-0000-0000-0000000000f2', 'request', :'bob', '{"message": ""}', '2025-01-01 10:02'),
	('00000000-0000-0000-0000-0000000000a4', '00000000-0000-0000-0000-0000000000f1', 'accept', :'ALICE', NULL, '2025-01-01 10:03'),
	-- carol-dave: both requested at once
	('00000000-0000-0000-0000-0000000000a5', '00000000-0000-0000-0000-0000000000f3', 'request', :'carol', NULL, '2025-01-01 11:00'),
	('00000000-0000-0000-0000-0000000000a6', '00000000-0000-0000-0000-0000000000f4', 'request', :'dave', NULL, '2025-01-01 11:00:01'),
	-- alice-erin: an accept with nothing to accept
	('00000000-0000-0000-0000-0000000000a7', '00000000-0000-0000-0000-0000000000f5', 'accept', :'erin', NULL, '2025-01-01 12:00'),
	-- the invalid address's request
	('00000000-0000-0000-0000-0000000000a8', '00000000-0000-0000-0000-0000000000f6', 'request', :'alice', NULL, '2025-01-01 12:00'),
	-- no friendship row at all
	('00000000-0000-0000-0000-0000000000a9', '00000000-0000-0000-0000-0000000000ff', 'request', :'carol', NULL, '2025-01-01 12:30'),
	-- erin -> bob, pending
	('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000000f9', 'request', :'erin', '{"message": "hello bob"}', '2025-01-01 13:00'),
	-- frank-alice: friends, then both block
	('00000000-0000-0000-0000-0000000000b2', '00000000-0000-0000-0000-000000000f10', 'request', :'FRANK', NULL, '2025-01-01 14:00'),
	('00000000-0000-0000-0000-0000000000b3', '00000000-0000-0000-0000-000000000f10', 'accept', :'alice', NULL, '2025-01-01 14:01'),
	('00000000-0000-0000-0000-0000000000b4', '00000000-0000-0000-0000-000000000f10', 'block', :'alice', NULL, '2025-01-01 14:02'),
	('00000000-0000-0000-0000-0000000000b5', '00000000-0000-0000-0000-000000000f10', 'block', :'frank', NULL, '2025-01-01 14:03'),
	-- gina-hank: friends, the block never recorded on the friendship
	('00000000-0000-0000-0000-0000000000b6', '00000000-0000-0000-0000-000000000f11', 'request', :'gina', NULL, '2025-01-01 15:00'),
	('00000000-0000-0000-0000-0000000000b7', '00000000-0000-0000-0000-000000000f11', 'accept', :'hank', NULL, '2025-01-01 15:01');
INSERT INTO refdb.blocks (id, blocker_address, blocked_address, blocked_at) VALUES
	('00000000-0000-0000-0000-0000000000c1', :'ALICE', :'frank', '2025-01-01 14:02'),
	('00000000-0000-0000-0000-0000000000c2', :'frank', :'alice', '2025-01-01 14:03'),
	('00000000-0000-0000-0000-0000000000c3', :'gina', :'hank', '2025-01-01 15:02'),
	-- one block twice, in two spellings
	('00000000-0000-0000-0000-0000000000c4', :'carol', :'erin', '2025-01-01 16:00'),
	('00000000-0000-0000-0000-0000000000c5', :'CAROL', :'erin', '2025-01-01 16:01'),
	('00000000-0000-0000-0000-0000000000c6', :'bob', 'bob', '2025-01-01 16:02');
INSERT INTO refdb.social_settings VALUES
	(:'alice', 'only_friends', 'do_not_show_messages', 'hide'),
	(:'BOB', 'all', 'show_messages', 'hide'),
	(:'CAROL', 'all', 'show_messages', 'show'),
	(:'carol', 'only_friends', 'show_messages', 'show'),
	('0x1234', 'all', 'show_messages', 'show');

-- The source must be named and have the reference's shape (SC015).
\set VERBOSITY default
SELECT * FROM social.import_reference('nowhere');
CREATE SCHEMA notref;
CREATE TABLE notref.friendships (id uuid);
SELECT * FROM social.import_reference('notref');
\set VERBOSITY terse

-- Only superusers: nobody else may run it.
CREATE ROLE social_regress_importer NOLOGIN;
GRANT USAGE ON SCHEMA social, refdb TO social_regress_importer;
SET ROLE social_regress_importer;
SELECT * FROM social.import_reference('refdb');
RESET ROLE;
DROP OWNED BY social_regress_importer;
DROP ROLE social_regress_importer;

-- The import.  A listener's cursor taken before it sees no events from it.
SELECT social.events_cursor() AS cursor \gset
SELECT * FROM social.import_reference('refdb') ORDER BY kind, source_id, outcome;
SELECT count(*) AS events_seen FROM social.events_since(:'cursor');

-- The result, through the read API.
SELECT o.other, social.friendship_status(:'alice', o.other) AS status
FROM (VALUES (:'bob'), (:'erin'), (:'frank')) AS o(other) ORDER BY o.other;
SELECT social.friendship_status(:'carol', :'dave') AS carol_dave,
	   social.friendship_status(:'gina', :'hank') AS gina_hank,
	   social.friendship_status(:'hank', :'gina') AS hank_gina,
	   social.friendship_status(:'erin', :'bob') AS erin_bob;
SELECT address, total FROM social.friends(:'ALICE') ORDER BY address;
SELECT address, total FROM social.friends(:'gina') ORDER BY address;
-- alice-bob's merged history, oldest first, both rows' actions in time order.
SELECT row_number() OVER (ORDER BY h.seq) AS n, h.action, h.acting_user, h.message
FROM social.friendship_history(:'alice', :'bob') h ORDER BY h.seq;
SELECT f.id, f.address_requester, f.address_requested, f.is_active, f.last_action
FROM social.friendships f ORDER BY f.id;
SELECT address, message, total FROM social.pending_requests(:'bob') ORDER BY address;
SELECT address FROM social.blocked_users(:'alice') ORDER BY address;
SELECT * FROM social.blocking_status(:'frank');
SELECT address FROM social.blocked_users(:'carol') ORDER BY address;
SELECT action, blocker_address, blocked_address FROM social.block_actions ORDER BY id;
SELECT * FROM social.get_settings(:'alice');
SELECT * FROM social.get_settings(:'bob');
SELECT * FROM social.get_settings(:'carol');
-- Imported log rows carry the frozen xid, and the friend sets agree with the friendships.
SELECT DISTINCT xid FROM social.friendship_actions ORDER BY xid;
-- Imported requests and accepts enqueue no notification (0.5.0): only the state machine's write
-- path enqueues, and the import writes the log itself.
SELECT (SELECT count(*) FROM social.friendship_actions WHERE action IN ('request', 'accept'))
		   AS imported_requests_and_accepts,
	   (SELECT count(*) FROM social.notification_outbox) AS notifications;
SELECT * FROM social.check_friend_sets() ORDER BY address;

-- A rerun imports nothing twice.
CREATE TABLE pg_temp.counts AS
	SELECT (SELECT count(*) FROM social.friendships) AS friendships,
		   (SELECT count(*) FROM social.friendship_actions) AS actions,
		   (SELECT count(*) FROM social.blocks) AS blocks,
		   (SELECT count(*) FROM social.block_actions) AS block_actions,
		   (SELECT count(*) FROM social.settings) AS settings;
SELECT * FROM pg_temp.counts;
SELECT kind, outcome, count(*) FROM social.import_reference('refdb')
GROUP BY kind, outcome ORDER BY kind, outcome;
SELECT (SELECT count(*) FROM social.friendships) AS friendships,
	   (SELECT count(*) FROM social.friendship_actions) AS actions,
	   (SELECT count(*) FROM social.blocks) AS blocks,
	   (SELECT count(*) FROM social.block_actions) AS block_actions,
	   (SELECT count(*) FROM social.settings) AS settings;

-- The source moved on (bob accepted erin) and carol-dave was corrected: a rerun appends the
-- new action and imports the corrected pair.
INSERT INTO refdb.friendship_actions VALUES
	('00000000-0000-0000-0000-0000000000b8', '00000000-0000-0000-0000-0000000000f9', 'accept', :'BOB', NULL, '2025-01-02 09:00');
DELETE FROM refdb.friendship_actions WHERE id = '00000000-0000-0000-0000-0000000000a6';
-- Twice in one transaction: the second call finds the first one's work done
-- (rolled back: the rerun below does it again).
BEGIN;
SELECT outcome, count(*) FROM social.import_reference('refdb') GROUP BY outcome ORDER BY outcome;
SELECT outcome, count(*) FROM social.import_reference('refdb') GROUP BY outcome ORDER BY outcome;
ROLLBACK;

SELECT * FROM social.import_reference('refdb')
WHERE outcome NOT IN ('already_imported', 'refused') ORDER BY kind, source_id, outcome;
SELECT social.friendship_status(:'bob', :'erin') AS bob_erin,
	   social.friendship_status(:'carol', :'dave') AS carol_dave;
SELECT row_number() OVER (ORDER BY h.seq) AS n, h.action, h.acting_user, h.message
FROM social.friendship_history(:'erin', :'bob') h ORDER BY h.seq;
SELECT * FROM social.check_friend_sets() ORDER BY address;

-- The live API works on imported pairs: bob and erin can part.
SET social.actor_actions_per_minute = 0;
SET social.pair_actions_per_minute = 0;
SELECT status FROM social.upsert_friendship(:'erin', :'bob', 'delete');
SELECT private_messages_privacy FROM social.upsert_settings(:'alice', 'all');
-- ... and a later import brings neither old state back: social's history is longer, and
-- alice's settings have changed since.
SELECT kind, source_id, outcome, detail FROM social.import_reference('refdb')
WHERE source_id IN ('00000000-0000-0000-0000-0000000000f9', :'alice')
ORDER BY kind, source_id, outcome;
SELECT social.friendship_status(:'bob', :'erin') AS bob_erin,
	   (social.get_settings(:'alice')).private_messages_privacy AS alice_privacy;

DROP SCHEMA refdb CASCADE;
DROP SCHEMA notref CASCADE;
