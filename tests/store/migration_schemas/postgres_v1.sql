-- cmio store schema version 1, as created by an earlier release

CREATE TABLE IF NOT EXISTS schema_version (
        component text PRIMARY KEY,
        version integer NOT NULL);

CREATE TABLE IF NOT EXISTS resource (
        type text COLLATE "C" NOT NULL,
        id text COLLATE "C" NOT NULL,
        version integer NOT NULL,
        last_updated text COLLATE "C" NOT NULL,
        deleted boolean NOT NULL,
        data text,
        body jsonb GENERATED ALWAYS AS (data::jsonb) STORED,
        PRIMARY KEY (type, id));

CREATE INDEX IF NOT EXISTS resource_type_lu ON resource (type, last_updated);

CREATE INDEX IF NOT EXISTS resource_lu ON resource (last_updated);

CREATE TABLE IF NOT EXISTS resource_history (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        type text COLLATE "C" NOT NULL,
        id text COLLATE "C" NOT NULL,
        version integer NOT NULL,
        last_updated text COLLATE "C" NOT NULL,
        deleted boolean NOT NULL,
        method text NOT NULL,
        data text,
        UNIQUE (type, id, version));

CREATE INDEX IF NOT EXISTS resource_history_type_seq ON resource_history (type, seq);

CREATE TABLE IF NOT EXISTS token_index (
        resource_type text COLLATE "C" NOT NULL,
        resource_id text COLLATE "C" NOT NULL,
        param text COLLATE "C" NOT NULL,
        system text COLLATE "C",
        value text COLLATE "C" NOT NULL);

CREATE INDEX IF NOT EXISTS token_index_lookup
        ON token_index (resource_type, param, value, system);

CREATE INDEX IF NOT EXISTS token_index_resource
        ON token_index (resource_type, resource_id);

INSERT INTO schema_version (component, version) VALUES ('store', 1);
