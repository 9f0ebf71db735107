//! Erasing personal data from cases that ended long ago (`archive.personal_data_days`): the
//! caller's name and phone, the phone's key, and the configured request fields.

use chrono::{DateTime, Utc};

use super::{Archive, ArchiveError};

impl Archive {
    /// Erases the personal data of at most `limit` cases that ended before `before` and still
    /// hold it, oldest first; returns how many. Gateways running this at once skip each other's
    /// rows (`SKIP LOCKED`), so each case is erased once.
    pub async fn erase_personal(
        &self,
        before: DateTime<Utc>,
        paths: &[Vec<String>],
        limit: i64,
    ) -> Result<u64, ArchiveError> {
        self.bounded("erasing personal data", async {
            let client = self.client().await?;
            // `request #- $n` removes one path per parameter; the paths are settings, passed
            // as parameters, never pasted into the text.
            let mut erase = String::from("request");
            for i in 0..paths.len() {
                erase.push_str(&format!(" #- ${}::text[]", i + 3));
            }
            let sql = format!(
                "WITH due AS (SELECT id FROM cases WHERE personal_erased_at IS NULL \
                 AND ended_at < $1 ORDER BY ended_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
                 UPDATE cases SET caller_name = NULL, caller_phone = NULL, caller_key = NULL, \
                 personal_erased_at = now(), request = {erase} FROM due WHERE cases.id = due.id"
            );
            let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&before, &limit];
            for p in paths {
                params.push(p);
            }
            Ok(client.execute(&sql, &params).await?)
        })
        .await
    }
}
