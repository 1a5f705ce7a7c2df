//! The schema of every engine, version by version, in one place: version
//! `n` is `MIGRATIONS[n - 1]`, with the script that takes a SQLite store and
//! the one that takes a PostgreSQL store from `n - 1` to `n`. Both engines
//! count the same versions, so a schema version means the same tables
//! everywhere (and `pitr store copy` can move rows between them).
//!
//! Append only: never edit a released script; a change is a new version
//! with a script for each engine. SQLite keeps its version in
//! `PRAGMA user_version`; PostgreSQL in the one-row `schema_version` table
//! that its first script creates. A store whose version is newer than
//! [`SCHEMA_VERSION`] is refused untouched by either engine.

/// One schema version: the same change written for each engine.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// What the version brings, for people.
    pub summary: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        summary: "requests, their audit trail, jobs, step checkpoints, leases, environment history",
        sqlite: r#"
CREATE TABLE requests (
    id            TEXT PRIMARY KEY NOT NULL,
    environment   TEXT NOT NULL,
    database      TEXT NOT NULL,
    restore_point TEXT NOT NULL,
    window_start  TEXT NOT NULL,
    window_end    TEXT NOT NULL,
    ack_erase     INTEGER NOT NULL CHECK (ack_erase IN (0, 1)),
    ack_downtime  INTEGER NOT NULL CHECK (ack_downtime IN (0, 1)),
    ack_scope     INTEGER NOT NULL CHECK (ack_scope IN (0, 1)),
    requester     TEXT NOT NULL,
    reason        TEXT,
    prestage      INTEGER NOT NULL CHECK (prestage IN (0, 1)),
    status        TEXT NOT NULL,
    submitted_at  TEXT NOT NULL,
    updated_at    TEXT NOT NULL
) STRICT;
CREATE INDEX requests_environment_status ON requests (environment, status);
-- At most one active request per environment, guaranteed by the file itself
-- (insert_request checks first, to name the request that holds it). The list
-- must match RequestStatus::is_active; a change there needs a migration here.
CREATE UNIQUE INDEX requests_one_active_per_environment ON requests (environment)
    WHERE status IN ('submitted', 'accepted', 'running');

CREATE TABLE request_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id  TEXT NOT NULL REFERENCES requests (id),
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    from_status TEXT,
    to_status   TEXT NOT NULL,
    note        TEXT
) STRICT;
CREATE INDEX request_events_request ON request_events (request_id, id);

CREATE TABLE jobs (
    id          TEXT PRIMARY KEY NOT NULL,
    request_id  TEXT NOT NULL REFERENCES requests (id),
    dry_run     INTEGER NOT NULL CHECK (dry_run IN (0, 1)),
    status      TEXT NOT NULL,
    plan        TEXT NOT NULL, -- step names, comma-separated, in order
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    finished_at TEXT,
    facts       TEXT NOT NULL, -- JSON of JobFacts
    error       TEXT
) STRICT;
CREATE INDEX jobs_request ON jobs (request_id, created_at);

CREATE TABLE job_steps (
    job_id       TEXT NOT NULL REFERENCES jobs (id),
    step         TEXT NOT NULL,
    seq          INTEGER NOT NULL, -- order in which the step was first saved
    status       TEXT NOT NULL,
    attempts     INTEGER NOT NULL CHECK (attempts >= 0),
    external_ref TEXT,
    started_at   TEXT,
    finished_at  TEXT,
    detail       TEXT,
    error        TEXT,
    PRIMARY KEY (job_id, step)
) STRICT;

-- Leases of jobs to runners; what happened to environments (not used yet).
CREATE TABLE leases (
    job_id     TEXT PRIMARY KEY NOT NULL REFERENCES jobs (id),
    owner      TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    fencing    INTEGER NOT NULL
) STRICT;

CREATE TABLE environment_history (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    environment TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('restore', 'deployment')),
    at          TEXT NOT NULL,
    finished_at TEXT,
    version     TEXT,
    detail      TEXT
) STRICT;
CREATE INDEX environment_history_environment ON environment_history (environment, at);
"#,
        postgres: r#"
-- The schema version, one row (the migration runner writes it).
CREATE TABLE schema_version (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version   bigint NOT NULL
);

CREATE TABLE requests (
    id            text PRIMARY KEY,
    -- Insertion order: breaks ties on submitted_at (SQLite uses its rowid).
    seq           bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    environment   text NOT NULL,
    database      text NOT NULL,
    restore_point timestamptz NOT NULL,
    window_start  timestamptz NOT NULL,
    window_end    timestamptz NOT NULL,
    ack_erase     boolean NOT NULL,
    ack_downtime  boolean NOT NULL,
    ack_scope     boolean NOT NULL,
    requester     text NOT NULL,
    reason        text,
    prestage      boolean NOT NULL,
    status        text NOT NULL,
    submitted_at  timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX requests_environment_status ON requests (environment, status);
-- At most one active request per environment, guaranteed by the database
-- itself (insert_request checks first under a per-environment lock, to name
-- the request that holds it). The list must match RequestStatus::is_active.
CREATE UNIQUE INDEX requests_one_active_per_environment ON requests (environment)
    WHERE status IN ('submitted', 'accepted', 'running');

CREATE TABLE request_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id  text NOT NULL REFERENCES requests (id),
    at          timestamptz NOT NULL,
    actor       text NOT NULL,
    from_status text,
    to_status   text NOT NULL,
    note        text
);
CREATE INDEX request_events_request ON request_events (request_id, id);

CREATE TABLE jobs (
    id          text PRIMARY KEY,
    seq         bigint GENERATED ALWAYS AS IDENTITY UNIQUE, -- insertion order
    request_id  text NOT NULL REFERENCES requests (id),
    dry_run     boolean NOT NULL,
    status      text NOT NULL,
    plan        text NOT NULL, -- step names, comma-separated, in order
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    finished_at timestamptz,
    facts       text NOT NULL, -- JSON of JobFacts, kept as written (not jsonb)
    error       text
);
CREATE INDEX jobs_request ON jobs (request_id, created_at, seq);

CREATE TABLE job_steps (
    job_id       text NOT NULL REFERENCES jobs (id),
    step         text NOT NULL,
    seq          bigint NOT NULL, -- order in which the step was first saved
    status       text NOT NULL,
    attempts     bigint NOT NULL CHECK (attempts >= 0),
    external_ref text,
    started_at   timestamptz,
    finished_at  timestamptz,
    detail       text,
    error        text,
    PRIMARY KEY (job_id, step)
);

CREATE TABLE leases (
    job_id     text PRIMARY KEY REFERENCES jobs (id),
    owner      text NOT NULL,
    expires_at timestamptz NOT NULL,
    fencing    bigint NOT NULL
);

CREATE TABLE environment_history (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    environment text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('restore', 'deployment')),
    at          timestamptz NOT NULL,
    finished_at timestamptz,
    version     text,
    detail      text
);
CREATE INDEX environment_history_environment ON environment_history (environment, at);
"#,
    },
    Migration {
        summary: "emergencies (a window sooner than 24 h) and the code-version acknowledgement",
        sqlite: r#"
ALTER TABLE requests ADD COLUMN emergency TEXT;
ALTER TABLE requests ADD COLUMN ack_version_mismatch INTEGER NOT NULL DEFAULT 0
    CHECK (ack_version_mismatch IN (0, 1));
"#,
        postgres: r#"
ALTER TABLE requests ADD COLUMN emergency text;
ALTER TABLE requests ADD COLUMN ack_version_mismatch boolean NOT NULL DEFAULT false;
"#,
    },
    Migration {
        summary:
            "a request's warning (retention at its window), rollbacks in the environment history",
        // SQLite cannot change a CHECK constraint: the history table is rebuilt.
        sqlite: r#"
ALTER TABLE requests ADD COLUMN warning TEXT;
CREATE TABLE environment_history_v3 (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    environment TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('restore', 'deployment', 'rollback')),
    at          TEXT NOT NULL,
    finished_at TEXT,
    version     TEXT,
    detail      TEXT
) STRICT;
INSERT INTO environment_history_v3 (id, environment, kind, at, finished_at, version, detail)
    SELECT id, environment, kind, at, finished_at, version, detail FROM environment_history;
DROP TABLE environment_history;
ALTER TABLE environment_history_v3 RENAME TO environment_history;
CREATE INDEX environment_history_environment ON environment_history (environment, at);
"#,
        postgres: r#"
ALTER TABLE requests ADD COLUMN warning text;
ALTER TABLE environment_history DROP CONSTRAINT environment_history_kind_check;
ALTER TABLE environment_history ADD CONSTRAINT environment_history_kind_check
    CHECK (kind IN ('restore', 'deployment', 'rollback'));
"#,
    },
    Migration {
        summary: "the notification outbox (written with each transition) and its deliveries",
        sqlite: r#"
CREATE TABLE outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL,
    event      TEXT NOT NULL,
    payload    TEXT NOT NULL, -- the exact JSON body receivers get
    at         TEXT NOT NULL
) STRICT;
CREATE INDEX outbox_at ON outbox (at);
CREATE INDEX outbox_request ON outbox (request_id, seq);

CREATE TABLE deliveries (
    receiver        TEXT NOT NULL,
    outbox_seq      INTEGER NOT NULL REFERENCES outbox (seq) ON DELETE CASCADE,
    request_id      TEXT NOT NULL,
    delivery_id     TEXT NOT NULL UNIQUE,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL CHECK (attempts >= 0),
    created_at      TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    claimed_by      TEXT,
    claimed_until   TEXT,
    last_attempt_at TEXT,
    delivered_at    TEXT,
    last_error      TEXT,
    PRIMARY KEY (receiver, outbox_seq)
) STRICT;
CREATE INDEX deliveries_due ON deliveries (receiver, status, next_attempt_at);
CREATE INDEX deliveries_chain ON deliveries (receiver, request_id, status, outbox_seq);
"#,
        postgres: r#"
CREATE TABLE outbox (
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id text NOT NULL,
    event      text NOT NULL,
    payload    text NOT NULL, -- the exact JSON body receivers get
    at         timestamptz NOT NULL
);
CREATE INDEX outbox_at ON outbox (at);
CREATE INDEX outbox_request ON outbox (request_id, seq);

CREATE TABLE deliveries (
    receiver        text NOT NULL,
    outbox_seq      bigint NOT NULL REFERENCES outbox (seq) ON DELETE CASCADE,
    request_id      text NOT NULL,
    delivery_id     text NOT NULL UNIQUE,
    status          text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        bigint NOT NULL CHECK (attempts >= 0),
    created_at      timestamptz NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    claimed_by      text,
    claimed_until   timestamptz,
    last_attempt_at timestamptz,
    delivered_at    timestamptz,
    last_error      text,
    PRIMARY KEY (receiver, outbox_seq)
);
CREATE INDEX deliveries_due ON deliveries (receiver, status, next_attempt_at);
CREATE INDEX deliveries_chain ON deliveries (receiver, request_id, status, outbox_seq);
"#,
    },
    Migration {
        summary: "the web page's sign-ins in progress and sessions (opaque ids, stored hashed)",
        sqlite: r#"
CREATE TABLE web_logins (
    id_hash    TEXT PRIMARY KEY NOT NULL, -- SHA-256 (hex) of the login cookie
    state      TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    verifier   TEXT NOT NULL,             -- the PKCE code verifier
    return_to  TEXT NOT NULL,
    expires_at TEXT NOT NULL
) STRICT;
CREATE INDEX web_logins_expires ON web_logins (expires_at);

CREATE TABLE web_sessions (
    id_hash    TEXT PRIMARY KEY NOT NULL, -- SHA-256 (hex) of the session cookie
    actor      TEXT NOT NULL,
    name       TEXT,
    roles      TEXT NOT NULL,             -- JSON array of app role values
    groups     TEXT NOT NULL,             -- JSON array of group object ids
    csrf       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
) STRICT;
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);
"#,
        postgres: r#"
CREATE TABLE web_logins (
    id_hash    text PRIMARY KEY, -- SHA-256 (hex) of the login cookie
    state      text NOT NULL,
    nonce      text NOT NULL,
    verifier   text NOT NULL,    -- the PKCE code verifier
    return_to  text NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX web_logins_expires ON web_logins (expires_at);

CREATE TABLE web_sessions (
    id_hash    text PRIMARY KEY, -- SHA-256 (hex) of the session cookie
    actor      text NOT NULL,
    name       text,
    roles      text NOT NULL,    -- JSON array of app role values
    groups     text NOT NULL,    -- JSON array of group object ids
    csrf       text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);
"#,
    },
    Migration {
        summary: "the work in play found without reading finished history: jobs awaiting a \
                  cleanup, requests and jobs by status",
        // `awaiting_cleanup` is `store::in_play::awaits_cleanup`, written with
        // every job and `cleanup` checkpoint; here computed once for the jobs
        // already stored (a real, successful restore, not a rollback, whose
        // cleanup neither succeeded nor failed three times).
        sqlite: r#"
ALTER TABLE jobs ADD COLUMN awaiting_cleanup INTEGER NOT NULL DEFAULT 0
    CHECK (awaiting_cleanup IN (0, 1));
UPDATE jobs SET awaiting_cleanup = 1
 WHERE status = 'succeeded' AND dry_run = 0
   AND json_extract(facts, '$.rollback') IS NULL
   AND NOT EXISTS (
       SELECT 1 FROM job_steps s
        WHERE s.job_id = jobs.id AND s.step = 'cleanup'
          AND (s.status = 'succeeded' OR (s.status = 'failed' AND s.attempts >= 3)));
CREATE INDEX jobs_awaiting_cleanup ON jobs (created_at) WHERE awaiting_cleanup = 1;
CREATE INDEX jobs_status ON jobs (status);
CREATE INDEX requests_status ON requests (status);
"#,
        postgres: r#"
ALTER TABLE jobs ADD COLUMN awaiting_cleanup boolean NOT NULL DEFAULT false;
UPDATE jobs SET awaiting_cleanup = true
 WHERE status = 'succeeded' AND NOT dry_run
   AND (facts::jsonb ->> 'rollback') IS NULL
   AND NOT EXISTS (
       SELECT 1 FROM job_steps s
        WHERE s.job_id = jobs.id AND s.step = 'cleanup'
          AND (s.status = 'succeeded' OR (s.status = 'failed' AND s.attempts >= 3)));
CREATE INDEX jobs_awaiting_cleanup ON jobs (created_at, seq) WHERE awaiting_cleanup;
CREATE INDEX jobs_status ON jobs (status);
CREATE INDEX requests_status ON requests (status);
"#,
    },
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The script that takes a store at `version` to `version + 1`, if any.
pub fn next_after(version: i64) -> Option<&'static Migration> {
    usize::try_from(version)
        .ok()
        .and_then(|v| MIGRATIONS.get(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both engines' scripts name the same tables in every version that
    /// creates tables, so the engines cannot drift apart unnoticed.
    #[test]
    fn every_version_creates_the_same_tables_on_both_engines() {
        fn tables(script: &str) -> Vec<String> {
            // A table built to replace another (SQLite cannot alter a
            // constraint) and renamed to it is not a new table.
            let renamed: Vec<&str> = script
                .split("ALTER TABLE ")
                .skip(1)
                .filter(|rest| rest.contains(" RENAME TO "))
                .filter_map(|rest| rest.split_whitespace().next())
                .collect();
            let mut names: Vec<String> = script
                .split("CREATE TABLE ")
                .skip(1)
                .filter_map(|rest| rest.split_whitespace().next())
                .filter(|t| !renamed.contains(t))
                .map(str::to_string)
                .filter(|t| t != "schema_version")
                .collect();
            names.sort();
            names
        }
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(tables(m.sqlite), tables(m.postgres), "version {}", i + 1);
        }
        assert!(next_after(SCHEMA_VERSION).is_none());
        assert!(next_after(-1).is_none());
        assert_eq!(
            next_after(0).map(|m| m.summary),
            Some(MIGRATIONS[0].summary)
        );
    }
}
