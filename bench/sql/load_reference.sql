-- The reference service's schema (Decentraland social-service-ea: its migrations and
-- doc/reference-service.md#schema) as plain tables in schema ref, loaded from bench.*
-- with the same graph as social.* (load_social.sql runs at the same time).  Indexes are the ones
-- the reference needed in production: both address columns, the pair, friendship_actions
-- (friendship_id, timestamp DESC), (acting_user) and (action, acting_user); blocks unique
-- (blocker, blocked) plus blocked.  The reference first had hash indexes on the address columns;
-- b-tree serves the same equality lookups.  Indexes are built after the load, as a restore would.

\set ON_ERROR_STOP 1
SET maintenance_work_mem = '256MB';

CREATE SCHEMA ref;

CREATE TABLE ref.friendships (
	id					uuid PRIMARY KEY,
	address_requester	varchar NOT NULL,
	address_requested	varchar NOT NULL,
	is_active			boolean NOT NULL DEFAULT false,
	created_at			timestamp NOT NULL DEFAULT now(),
	updated_at			timestamp NOT NULL DEFAULT now()
);
CREATE TABLE ref.friendship_actions (
	id				uuid PRIMARY KEY,
	friendship_id	uuid NOT NULL,
	action			varchar NOT NULL,
	acting_user		varchar NOT NULL,
	metadata		json,
	"timestamp"		timestamp NOT NULL DEFAULT now()
);
CREATE TABLE ref.blocks (
	id				uuid PRIMARY KEY,
	blocker_address	varchar NOT NULL,
	blocked_address	varchar NOT NULL,
	blocked_at		timestamp NOT NULL DEFAULT now()
);

-- The reference stores UTC wall-clock timestamps.
INSERT INTO ref.friendships
SELECT id, address_requester, address_requested, is_active,
	   created_at AT TIME ZONE 'UTC', updated_at AT TIME ZONE 'UTC'
FROM bench.friendships ORDER BY created_at;
INSERT INTO ref.friendship_actions
SELECT x.id, x.friendship_id, x.action, u.addr, x.metadata::json, x.ts AT TIME ZONE 'UTC'
FROM bench.actions x JOIN bench.users u ON u.n = x.actor
ORDER BY x.ts;
INSERT INTO ref.blocks
SELECT id, blocker_address, blocked_address, blocked_at AT TIME ZONE 'UTC' FROM bench.blocks;

ALTER TABLE ref.friendships ADD CONSTRAINT unique_addresses
	UNIQUE (address_requester, address_requested);
CREATE INDEX friendships_address_requester ON ref.friendships (address_requester);
CREATE INDEX friendships_address_requested ON ref.friendships (address_requested);
CREATE UNIQUE INDEX friendships_unique_pair ON ref.friendships (
	least(address_requester, address_requested), greatest(address_requester, address_requested));
CREATE INDEX friendship_actions_friendship_id_timestamp
	ON ref.friendship_actions (friendship_id, "timestamp" DESC);
CREATE INDEX friendship_actions_acting_user ON ref.friendship_actions (acting_user);
CREATE INDEX friendship_actions_action_acting_user ON ref.friendship_actions (action, acting_user);
ALTER TABLE ref.blocks ADD CONSTRAINT blocks_pair UNIQUE (blocker_address, blocked_address);
CREATE INDEX blocks_blocked_address ON ref.blocks (blocked_address);
