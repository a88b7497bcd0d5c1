-- Run once by docker/postgres-entrypoint.sh when it initialises an empty data directory, in
-- database $POSTGRES_DB. The extension creates the NOLOGIN roles social_service (the daemon's
-- rights: EXECUTE on the API functions) and social_analyst; the entrypoint then creates the
-- login role the daemon uses, a member of social_service and nothing more.
CREATE EXTENSION IF NOT EXISTS social;
