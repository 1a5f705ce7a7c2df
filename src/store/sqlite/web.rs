//! The web page's sign-ins in progress and sessions on SQLite.
use super::db;
use super::rows::ts;
use crate::store::web::{list_from_json, list_json, WebLogin, WebSession};
use crate::store::{Result, StoreError};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

fn instant(table: &str, s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("{table}: {e}")))
}

pub(super) fn insert_login(tx: &Transaction<'_>, l: &WebLogin, now: DateTime<Utc>) -> Result<()> {
    const OP: &str = "insert_web_login";
    tx.execute("DELETE FROM web_logins WHERE expires_at <= ?1", [ts(&now)])
        .map_err(db(OP))?;
    tx.execute(
        "INSERT INTO web_logins (id_hash, state, nonce, verifier, return_to, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            l.id_hash,
            l.state,
            l.nonce,
            l.verifier,
            l.return_to,
            ts(&l.expires_at)
        ],
    )
    .map_err(db(OP))?;
    Ok(())
}

pub(super) fn take_login(
    tx: &Transaction<'_>,
    id_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<WebLogin>> {
    const OP: &str = "take_web_login";
    let row: Option<(String, String, String, String, String)> = tx
        .query_row(
            "DELETE FROM web_logins WHERE id_hash = ?1 \
             RETURNING state, nonce, verifier, return_to, expires_at",
            [id_hash],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()
        .map_err(db(OP))?;
    let Some((state, nonce, verifier, return_to, expires_at)) = row else {
        return Ok(None);
    };
    let expires_at = instant("web_logins", &expires_at)?;
    if expires_at <= now {
        return Ok(None);
    }
    Ok(Some(WebLogin {
        id_hash: id_hash.to_string(),
        state,
        nonce,
        verifier,
        return_to,
        expires_at,
    }))
}

pub(super) fn insert_session(
    tx: &Transaction<'_>,
    s: &WebSession,
    now: DateTime<Utc>,
) -> Result<()> {
    const OP: &str = "insert_web_session";
    tx.execute(
        "DELETE FROM web_sessions WHERE expires_at <= ?1",
        [ts(&now)],
    )
    .map_err(db(OP))?;
    tx.execute(
        "INSERT INTO web_sessions (id_hash, actor, name, roles, groups, csrf, created_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            s.id_hash,
            s.actor,
            s.name,
            list_json(&s.roles),
            list_json(&s.groups),
            s.csrf,
            ts(&s.created_at),
            ts(&s.expires_at)
        ],
    )
    .map_err(db(OP))?;
    Ok(())
}

type SessionRow = (
    String,
    Option<String>,
    String,
    String,
    String,
    String,
    String,
);

pub(super) fn session(
    conn: &Connection,
    id_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<WebSession>> {
    const OP: &str = "web_session";
    let row: Option<SessionRow> = conn
        .query_row(
            "SELECT actor, name, roles, groups, csrf, created_at, expires_at FROM web_sessions \
             WHERE id_hash = ?1 AND expires_at > ?2",
            params![id_hash, ts(&now)],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            },
        )
        .optional()
        .map_err(db(OP))?;
    let Some((actor, name, roles, groups, csrf, created_at, expires_at)) = row else {
        return Ok(None);
    };
    Ok(Some(WebSession {
        id_hash: id_hash.to_string(),
        actor,
        name,
        roles: list_from_json("web_sessions.roles", &roles)?,
        groups: list_from_json("web_sessions.groups", &groups)?,
        csrf,
        created_at: instant("web_sessions", &created_at)?,
        expires_at: instant("web_sessions", &expires_at)?,
    }))
}

pub(super) fn delete_session(tx: &Transaction<'_>, id_hash: &str) -> Result<bool> {
    let n = tx
        .execute("DELETE FROM web_sessions WHERE id_hash = ?1", [id_hash])
        .map_err(db("delete_web_session"))?;
    Ok(n > 0)
}
