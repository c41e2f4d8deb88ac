-- cmio store schema version 2, as created by an earlier release

CREATE TABLE IF NOT EXISTS schema_version (
    component TEXT PRIMARY KEY,
    version INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS resource (
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    last_updated TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    data BLOB,
    PRIMARY KEY (type, id)
);

CREATE INDEX IF NOT EXISTS resource_type_lu ON resource (type, last_updated);

CREATE TABLE IF NOT EXISTS resource_history (
    seq INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    last_updated TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    method TEXT NOT NULL,
    data BLOB,
    UNIQUE (type, id, version)
);

CREATE INDEX IF NOT EXISTS resource_history_type_seq ON resource_history (type, seq);

CREATE TABLE IF NOT EXISTS token_index (
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    param TEXT NOT NULL,
    system TEXT,
    value TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS token_index_lookup ON token_index (resource_type, param, value, system);

CREATE INDEX IF NOT EXISTS token_index_resource ON token_index (resource_type, resource_id);

CREATE INDEX IF NOT EXISTS token_index_param ON token_index (param, value, system);

CREATE TABLE IF NOT EXISTS token_index (resource_type TEXT NOT NULL, resource_id TEXT NOT NULL, param TEXT NOT NULL, system TEXT, value TEXT NOT NULL);

CREATE INDEX IF NOT EXISTS token_index_resource ON token_index (resource_type, resource_id);

CREATE INDEX IF NOT EXISTS token_index_lookup ON token_index (resource_type, param, value, system);

CREATE TABLE IF NOT EXISTS string_index (resource_type TEXT NOT NULL, resource_id TEXT NOT NULL, param TEXT NOT NULL, norm TEXT, exact TEXT);

CREATE INDEX IF NOT EXISTS string_index_resource ON string_index (resource_type, resource_id);

CREATE INDEX IF NOT EXISTS string_index_lookup ON string_index (resource_type, param, norm);

CREATE TABLE IF NOT EXISTS reference_index (resource_type TEXT NOT NULL, resource_id TEXT NOT NULL, param TEXT NOT NULL, target_type TEXT, target_id TEXT, url TEXT);

CREATE INDEX IF NOT EXISTS reference_index_resource ON reference_index (resource_type, resource_id);

CREATE INDEX IF NOT EXISTS reference_index_lookup ON reference_index (resource_type, param, target_id, target_type);

CREATE INDEX IF NOT EXISTS reference_index_lookup2 ON reference_index (resource_type, param, url);

CREATE TABLE IF NOT EXISTS date_index (resource_type TEXT NOT NULL, resource_id TEXT NOT NULL, param TEXT NOT NULL, low TEXT, high TEXT);

CREATE INDEX IF NOT EXISTS date_index_resource ON date_index (resource_type, resource_id);

CREATE INDEX IF NOT EXISTS date_index_lookup ON date_index (resource_type, param, low, high);

CREATE INDEX IF NOT EXISTS date_index_lookup2 ON date_index (resource_type, param, high);

CREATE TABLE IF NOT EXISTS number_index (resource_type TEXT NOT NULL, resource_id TEXT NOT NULL, param TEXT NOT NULL, low REAL, high REAL);

CREATE INDEX IF NOT EXISTS number_index_resource ON number_index (resource_type, resource_id);

CREATE INDEX IF NOT EXISTS number_index_lookup ON number_index (resource_type, param, low, high);

CREATE TABLE IF NOT EXISTS quantity_index (resource_type TEXT NOT NULL, resource_id TEXT NOT NULL, param TEXT NOT NULL, low REAL, high REAL, system TEXT, code TEXT, canon_low REAL, canon_high REAL, canon_code TEXT);

CREATE INDEX IF NOT EXISTS quantity_index_resource ON quantity_index (resource_type, resource_id);

CREATE INDEX IF NOT EXISTS quantity_index_lookup ON quantity_index (resource_type, param, code, low);

CREATE INDEX IF NOT EXISTS quantity_index_lookup2 ON quantity_index (resource_type, param, canon_code, canon_low);

CREATE TABLE IF NOT EXISTS uri_index (resource_type TEXT NOT NULL, resource_id TEXT NOT NULL, param TEXT NOT NULL, value TEXT);

CREATE INDEX IF NOT EXISTS uri_index_resource ON uri_index (resource_type, resource_id);

CREATE INDEX IF NOT EXISTS uri_index_lookup ON uri_index (resource_type, param, value);

INSERT INTO schema_version (component, version) VALUES ('store', 2);
