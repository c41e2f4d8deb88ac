-- cmio store schema version 1, as created by an earlier release

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

INSERT INTO schema_version (component, version) VALUES ('store', 1);
