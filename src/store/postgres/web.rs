//! The web page's sign-ins in progress and sessions on PostgreSQL (shared
//! by every runner: a sign-in may start on one and finish on another).
use super::sql::{exec, Params};
use super::{db, PostgresStore};
use crate::store::web::{list_from_json, list_json, WebLogin, WebSession};
use crate::store::Result;
use chrono::{DateTime, Utc};

impl PostgresStore {
    pub(super) async fn pg_insert_login(&self, l: &WebLogin, now: DateTime<Utc>) -> Result<()> {
        const OP: &str = "insert_web_login";
        let conn = self.conn(OP).await?;
        exec(
            &conn,
            OP,
            "DELETE FROM web_logins WHERE expires_at <= $1",
            &[&now],
        )
        .await?;
        let p: Params<'_> = &[
            &l.id_hash,
            &l.state,
            &l.nonce,
            &l.verifier,
            &l.return_to,
            &l.expires_at,
        ];
        exec(
            &conn,
            OP,
            "INSERT INTO web_logins (id_hash, state, nonce, verifier, return_to, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            p,
        )
        .await?;
        Ok(())
    }

    pub(super) async fn pg_take_login(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<WebLogin>> {
        const OP: &str = "take_web_login";
        let conn = self.conn(OP).await?;
        let stmt = conn
            .prepare_cached(
                "DELETE FROM web_logins WHERE id_hash = $1 \
                 RETURNING state, nonce, verifier, return_to, expires_at",
            )
            .await
            .map_err(db(OP))?;
        let Some(row) = conn.query_opt(&stmt, &[&id_hash]).await.map_err(db(OP))? else {
            return Ok(None);
        };
        let expires_at: DateTime<Utc> = row.try_get(4).map_err(db(OP))?;
        if expires_at <= now {
            return Ok(None);
        }
        Ok(Some(WebLogin {
            id_hash: id_hash.to_string(),
            state: row.try_get(0).map_err(db(OP))?,
            nonce: row.try_get(1).map_err(db(OP))?,
            verifier: row.try_get(2).map_err(db(OP))?,
            return_to: row.try_get(3).map_err(db(OP))?,
            expires_at,
        }))
    }

    pub(super) async fn pg_insert_session(&self, s: &WebSession, now: DateTime<Utc>) -> Result<()> {
        const OP: &str = "insert_web_session";
        let conn = self.conn(OP).await?;
        exec(
            &conn,
            OP,
            "DELETE FROM web_sessions WHERE expires_at <= $1",
            &[&now],
        )
        .await?;
        let (roles, groups) = (list_json(&s.roles), list_json(&s.groups));
        let p: Params<'_> = &[
            &s.id_hash,
            &s.actor,
            &s.name,
            &roles,
            &groups,
            &s.csrf,
            &s.created_at,
            &s.expires_at,
        ];
        exec(
            &conn,
            OP,
            "INSERT INTO web_sessions (id_hash, actor, name, roles, groups, csrf, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            p,
        )
        .await?;
        Ok(())
    }

    pub(super) async fn pg_session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<WebSession>> {
        const OP: &str = "web_session";
        let conn = self.conn(OP).await?;
        let stmt = conn
            .prepare_cached(
                "SELECT actor, name, roles, groups, csrf, created_at, expires_at FROM web_sessions \
                 WHERE id_hash = $1 AND expires_at > $2",
            )
            .await
            .map_err(db(OP))?;
        let Some(row) = conn
            .query_opt(&stmt, &[&id_hash, &now])
            .await
            .map_err(db(OP))?
        else {
            return Ok(None);
        };
        let roles: String = row.try_get(2).map_err(db(OP))?;
        let groups: String = row.try_get(3).map_err(db(OP))?;
        Ok(Some(WebSession {
            id_hash: id_hash.to_string(),
            actor: row.try_get(0).map_err(db(OP))?,
            name: row.try_get(1).map_err(db(OP))?,
            roles: list_from_json("web_sessions.roles", &roles)?,
            groups: list_from_json("web_sessions.groups", &groups)?,
            csrf: row.try_get(4).map_err(db(OP))?,
            created_at: row.try_get(5).map_err(db(OP))?,
            expires_at: row.try_get(6).map_err(db(OP))?,
        }))
    }

    pub(super) async fn pg_delete_session(&self, id_hash: &str) -> Result<bool> {
        const OP: &str = "delete_web_session";
        let conn = self.conn(OP).await?;
        let n = exec(
            &conn,
            OP,
            "DELETE FROM web_sessions WHERE id_hash = $1",
            &[&id_hash],
        )
        .await?;
        Ok(n > 0)
    }
}
