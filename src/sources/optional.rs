//! Endpoints a pool may not serve. OurPool documents only rewards-stats; its other account
//! paths, and Luxor's v1 workspace, are observed or proposed in the reference. The first 404
//! from such an endpoint switches it off for that source with one warning, and the rest of
//! the source keeps working. It stays off until the exporter restarts.

use std::collections::BTreeSet;
use std::sync::Mutex;

use serde::de::DeserializeOwned;
use tracing::warn;

use crate::client::Upstream;
use crate::error::PollError;

#[derive(Debug, Default)]
pub struct OptionalEndpoints {
    off: Mutex<BTreeSet<&'static str>>,
}

impl OptionalEndpoints {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_off(&self, endpoint: &'static str) -> bool {
        self.off
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(endpoint)
    }

    /// Like `Upstream::get_json`, but `Ok(None)` when the endpoint is switched off or answers
    /// 404 (which switches it off). Every other failure fails the poll as usual.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        api: &Upstream,
        endpoint: &'static str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Option<T>, PollError> {
        if self.is_off(endpoint) {
            return Ok(None);
        }
        match api.get_json(endpoint, path, query).await {
            Ok(value) => Ok(Some(value)),
            Err(PollError::Status {
                status: 404,
                message,
                ..
            }) => {
                self.off
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(endpoint);
                warn!(
                    source = %api.source,
                    pool = api.pool,
                    endpoint,
                    reason = %message,
                    "the pool does not serve this endpoint (HTTP 404): switched off for this source until restart; the rest of the source keeps working"
                );
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}
