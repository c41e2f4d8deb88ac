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

CREATE INDEX IF NOT EXISTS token_index_param ON token_index (param, value, system);

CREATE TABLE IF NOT EXISTS token_index (resource_type TEXT NOT NULL, resource_id TEXT NOT NULL, param TEXT NOT NULL, system TEXT, value TEXT NOT NULL);

CREATE INDEX IF NOT EXISTS token_index_owner ON token_index (resource_type, resource_id, param);

CREATE INDEX IF NOT EXISTS token_index_lookup ON token_index (resource_type, param, value, system);

CREATE TABLE IF NOT EXISTS string_index (resource_type TEXT NOT NULL, resource_id TEXT NOT NULL, param TEXT NOT NULL, norm TEXT, exact TEXT);

CREATE INDEX IF NOT EXISTS string_index_owner ON string_index (resource_type, resource_id, param);

CREATE INDEX IF NOT EXISTS string_index_lookup ON string_index (resource_type, param, norm);

CREATE TABLE IF NOT EXISTS reference_index (resource_type TEXT NOT NULL, resource_id TEXT NOT NULL, param TEXT NOT NULL, target_type TEXT, target_id TEXT, url TEXT);

CREATE INDEX IF NOT EXISTS reference_index_owner ON reference_index (resource_type, resource_id, param);

CREATE INDEX IF NOT EXISTS reference_index_lookup ON reference_index (resource_type, param, target_id, target_type);

CREATE INDEX IF NOT EXISTS reference_index_lookup2 ON reference_index (resource_type, param, url);

CREATE TABLE IF NOT EXISTS date_index (resource_type TEXT NOT NULL, resource_id TEXT NOT NULL, param TEXT NOT NULL, low TEXT, high TEXT);

CREATE INDEX IF NOT EXISTS date_index_owner ON date_index (resource_type, resource_id, param);

CREATE INDEX IF NOT EXISTS date_index_lookup ON date_index (resource_type, param, low, high);

CREATE INDEX IF NOT EXISTS date_index_lookup2 ON date_index (resource_type, param, high);

CREATE TABLE IF NOT EXISTS number_index (resource_type TEXT NOT NULL, resource_id TEXT NOT NULL, param TEXT NOT NULL, low REAL, high REAL);

CREATE INDEX IF NOT EXISTS number_index_owner ON number_index (resource_type, resource_id, param);

CREATE INDEX IF NOT EXISTS number_index_lookup ON number_index (resource_type, param, low, high);

CREATE TABLE IF NOT EXISTS quantity_index (resource_type TEXT NOT NULL, resource_id TEXT NOT NULL, param TEXT NOT NULL, low REAL, high REAL, system TEXT, code TEXT, canon_low REAL, canon_high REAL, canon_code TEXT);

CREATE INDEX IF NOT EXISTS quantity_index_owner ON quantity_index (resource_type, resource_id, param);

CREATE INDEX IF NOT EXISTS quantity_index_lookup ON quantity_index (resource_type, param, code, low);

CREATE INDEX IF NOT EXISTS quantity_index_lookup2 ON quantity_index (resource_type, param, canon_code, canon_low);

CREATE TABLE IF NOT EXISTS uri_index (resource_type TEXT NOT NULL, resource_id TEXT NOT NULL, param TEXT NOT NULL, value TEXT);

CREATE INDEX IF NOT EXISTS uri_index_owner ON uri_index (resource_type, resource_id, param);

CREATE INDEX IF NOT EXISTS uri_index_lookup ON uri_index (resource_type, param, value);

CREATE TABLE IF NOT EXISTS text_index (doc INTEGER PRIMARY KEY, resource_type TEXT NOT NULL, resource_id TEXT NOT NULL, param TEXT NOT NULL, body TEXT);

CREATE INDEX IF NOT EXISTS text_index_owner ON text_index (resource_type, resource_id, param);

CREATE TABLE IF NOT EXISTS job_state (name TEXT PRIMARY KEY, state TEXT NOT NULL);

CREATE VIRTUAL TABLE IF NOT EXISTS text_fts USING fts5(body, content='text_index', content_rowid='doc', tokenize='unicode61');

CREATE TRIGGER IF NOT EXISTS text_index_ai AFTER INSERT ON text_index BEGIN INSERT INTO text_fts (rowid, body) VALUES (new.doc, new.body); END;

CREATE TRIGGER IF NOT EXISTS text_index_ad AFTER DELETE ON text_index BEGIN INSERT INTO text_fts (text_fts, rowid, body) VALUES ('delete', old.doc, old.body); END;

CREATE TABLE IF NOT EXISTS audit_log (
            seq INTEGER PRIMARY KEY,
            recorded TEXT NOT NULL,
            data BLOB NOT NULL,
            hash TEXT NOT NULL);

CREATE INDEX IF NOT EXISTS audit_log_recorded ON audit_log (recorded);

CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
            BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
            BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

INSERT INTO schema_version (component, version) VALUES ('store', 2);
