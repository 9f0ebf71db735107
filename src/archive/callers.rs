//! A caller's archived cases: repeat requests are linked to earlier tickets of the same caller
//! even once those have left Redis.

use chrono::{DateTime, Utc};

use super::{Archive, ArchiveError};

impl Archive {
    /// The caller's cases (by the key of their phone) in `county` registered since `since`,
    /// with their categories, newest first (at most 50): repeat requests whose earlier tickets
    /// have already left Redis are still linked.
    pub async fn caller_cases(
        &self,
        county: &str,
        caller_key: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<(String, String)>, ArchiveError> {
        self.bounded("reading a caller's cases", async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(
                    "SELECT id, category FROM cases WHERE caller_key = $1 AND county = $2 \
                     AND created_at >= $3 ORDER BY created_at DESC LIMIT 50",
                )
                .await?;
            let rows = client.query(&stmt, &[&caller_key, &county, &since]).await?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
        .await
    }

    /// Adds `new_id` to the links of the archived cases `ids` (the other side of a repeat
    /// request linked at intake); a case that has it already is left alone.
    pub async fn add_link(&self, ids: &[String], new_id: &str) -> Result<u64, ArchiveError> {
        self.bounded("linking archived cases", async {
            let client = self.client().await?;
            Ok(client
                .execute(
                    "UPDATE cases SET linked = array_append(linked, $2) \
                     WHERE id = ANY($1) AND NOT ($2 = ANY(linked))",
                    &[&ids, &new_id],
                )
                .await?)
        })
        .await
    }
}
