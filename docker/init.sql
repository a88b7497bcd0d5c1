-- Run once by the postgres image's entrypoint when it initialises an empty data directory,
-- in database $POSTGRES_DB.
CREATE EXTENSION IF NOT EXISTS social;
