-- cmio store schema version 2, as created by an earlier release

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

CREATE INDEX IF NOT EXISTS token_index_param
        ON token_index (param, value, system);

CREATE TABLE IF NOT EXISTS token_index (resource_type text COLLATE "C" NOT NULL, resource_id text COLLATE "C" NOT NULL, param text COLLATE "C" NOT NULL, system text COLLATE "C", value text COLLATE "C" NOT NULL);

CREATE INDEX IF NOT EXISTS token_index_resource ON token_index (resource_type, resource_id);

CREATE INDEX IF NOT EXISTS token_index_lookup ON token_index (resource_type, param, value, system);

CREATE TABLE IF NOT EXISTS string_index (resource_type text COLLATE "C" NOT NULL, resource_id text COLLATE "C" NOT NULL, param text COLLATE "C" NOT NULL, norm text COLLATE "C", exact text COLLATE "C");

CREATE INDEX IF NOT EXISTS string_index_resource ON string_index (resource_type, resource_id);

CREATE INDEX IF NOT EXISTS string_index_lookup ON string_index (resource_type, param, norm);

CREATE TABLE IF NOT EXISTS reference_index (resource_type text COLLATE "C" NOT NULL, resource_id text COLLATE "C" NOT NULL, param text COLLATE "C" NOT NULL, target_type text COLLATE "C", target_id text COLLATE "C", url text COLLATE "C");

CREATE INDEX IF NOT EXISTS reference_index_resource ON reference_index (resource_type, resource_id);

CREATE INDEX IF NOT EXISTS reference_index_lookup ON reference_index (resource_type, param, target_id, target_type);

CREATE INDEX IF NOT EXISTS reference_index_lookup2 ON reference_index (resource_type, param, url);

CREATE TABLE IF NOT EXISTS date_index (resource_type text COLLATE "C" NOT NULL, resource_id text COLLATE "C" NOT NULL, param text COLLATE "C" NOT NULL, low text COLLATE "C", high text COLLATE "C");

CREATE INDEX IF NOT EXISTS date_index_resource ON date_index (resource_type, resource_id);

CREATE INDEX IF NOT EXISTS date_index_lookup ON date_index (resource_type, param, low, high);

CREATE INDEX IF NOT EXISTS date_index_lookup2 ON date_index (resource_type, param, high);

CREATE TABLE IF NOT EXISTS number_index (resource_type text COLLATE "C" NOT NULL, resource_id text COLLATE "C" NOT NULL, param text COLLATE "C" NOT NULL, low double precision, high double precision);

CREATE INDEX IF NOT EXISTS number_index_resource ON number_index (resource_type, resource_id);

CREATE INDEX IF NOT EXISTS number_index_lookup ON number_index (resource_type, param, low, high);

CREATE TABLE IF NOT EXISTS quantity_index (resource_type text COLLATE "C" NOT NULL, resource_id text COLLATE "C" NOT NULL, param text COLLATE "C" NOT NULL, low double precision, high double precision, system text COLLATE "C", code text COLLATE "C", canon_low double precision, canon_high double precision, canon_code text COLLATE "C");

CREATE INDEX IF NOT EXISTS quantity_index_resource ON quantity_index (resource_type, resource_id);

CREATE INDEX IF NOT EXISTS quantity_index_lookup ON quantity_index (resource_type, param, code, low);

CREATE INDEX IF NOT EXISTS quantity_index_lookup2 ON quantity_index (resource_type, param, canon_code, canon_low);

CREATE TABLE IF NOT EXISTS uri_index (resource_type text COLLATE "C" NOT NULL, resource_id text COLLATE "C" NOT NULL, param text COLLATE "C" NOT NULL, value text COLLATE "C");

CREATE INDEX IF NOT EXISTS uri_index_resource ON uri_index (resource_type, resource_id);

CREATE INDEX IF NOT EXISTS uri_index_lookup ON uri_index (resource_type, param, value);

INSERT INTO schema_version (component, version) VALUES ('store', 2);
