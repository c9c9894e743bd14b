\set ON_ERROR_STOP on
SELECT format('CREATE ROLE %I LOGIN', 'synapse') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'synapse') \gexec
SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', 'synapse', 'SCRAM-SHA-256$4096:ABEiM0RVZneImaq7zN3u/w==$4luzV1mtC22ojFnoLcKQuSQhyyxfTPS/cXab15y9yA4=:rLubkskUl5bjXuLr1uUH3eQd5DI5XZ0S4MCkwdYL/Iw=') \gexec
SELECT format('CREATE DATABASE %I OWNER %I ENCODING %L LC_COLLATE %L LC_CTYPE %L TEMPLATE template0', 'synapse', 'synapse', 'UTF8', 'C', 'C')
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'synapse') \gexec
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_database WHERE datname = 'synapse' AND (pg_encoding_to_char(encoding) <> 'UTF8' OR datcollate <> 'C' OR datctype <> 'C')) THEN
    RAISE EXCEPTION 'database % exists but is not UTF8 with LC_COLLATE and LC_CTYPE C; Synapse refuses it. Dump it and recreate it (see the README)', 'synapse';
  END IF;
END $$;
