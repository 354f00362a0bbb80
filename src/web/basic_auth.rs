//! `basic_auth_users`: bcrypt hashes, checked off the async threads, with the credentials
//! bcrypt has verified cached so a scrape does not pay for bcrypt every time.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

/// The path that answers without credentials.
const OPEN_PATH: &str = "/-/healthy";

/// User names to bcrypt hashes, and a hash of the same cost that an unknown user is checked
/// against, so that the time taken does not tell which users exist.
pub struct Users {
    hashes: BTreeMap<String, String>,
    decoy: String,
    /// SHA-256 of "user:password" for each pair bcrypt has verified: Prometheus sends the
    /// same credentials every scrape, and a bcrypt check costs milliseconds of CPU on the
    /// blocking pool the polls use too (exporter-toolkit caches the same way). Unknown users
    /// and wrong passwords are never cached: they always pay the full check.
    verified: std::sync::Mutex<std::collections::BTreeSet<[u8; 32]>>,
    bcrypt_checks: std::sync::atomic::AtomicU64,
}

/// Verified credentials kept at most; past it the cache starts over.
const MOST_VERIFIED: usize = 64;

impl Users {
    /// `hashes` by user, with a decoy for unknown users that costs what the dearest real
    /// check costs: cheaper, its time would tell a known user from an unknown one. (Users
    /// whose hashes differ in cost can still be told apart from each other: `load` warns.)
    pub fn new(hashes: BTreeMap<String, String>) -> Result<Users, bcrypt::BcryptError> {
        let cost = hashes
            .values()
            .filter_map(|h| bcrypt_cost(h))
            .max()
            .unwrap_or(bcrypt::DEFAULT_COST);
        Ok(Users {
            hashes,
            decoy: bcrypt::hash("mining-exporter decoy", cost)?,
            verified: Default::default(),
            bcrypt_checks: Default::default(),
        })
    }

    /// The bcrypt cost an unknown user's check pays.
    pub fn decoy_cost(&self) -> Option<u32> {
        bcrypt_cost(&self.decoy)
    }

    /// How many users there are.
    pub fn count(&self) -> usize {
        self.hashes.len()
    }

    /// How many bcrypt checks requests have cost so far.
    pub fn bcrypt_checks(&self) -> u64 {
        self.bcrypt_checks
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn key(user: &str, password: &str) -> [u8; 32] {
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        context.update(user.as_bytes());
        context.update(b":");
        context.update(password.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(context.finish().as_ref());
        key
    }

    fn verified(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeSet<[u8; 32]>> {
        self.verified.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `user` with `password` may read; bcrypt only for credentials not seen yet.
    pub fn allows(&self, user: &str, password: &str) -> bool {
        let key = Users::key(user, password);
        if self.verified().contains(&key) {
            return true;
        }
        self.bcrypt_checks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let known = self.hashes.get(user);
        let hash = known.unwrap_or(&self.decoy);
        let allowed = bcrypt::verify(password, hash).unwrap_or(false) && known.is_some();
        if allowed {
            let mut verified = self.verified();
            if verified.len() >= MOST_VERIFIED {
                verified.clear();
            }
            verified.insert(key);
        }
        allowed
    }

    /// Whether the credentials were verified before, without checking them.
    fn seen(&self, user: &str, password: &str) -> bool {
        self.verified().contains(&Users::key(user, password))
    }
}

/// The cost of a `$2a$`/`$2b$`/`$2x$`/`$2y$` bcrypt hash, or None if it is not one.
pub(super) fn bcrypt_cost(hash: &str) -> Option<u32> {
    let rest = ["$2a$", "$2b$", "$2x$", "$2y$"]
        .iter()
        .find_map(|p| hash.strip_prefix(p))?;
    let (cost, tail) = rest.split_once('$')?;
    (tail.len() == 53 && cost.len() == 2)
        .then(|| cost.parse().ok())
        .flatten()
        .filter(|c| (4..=31).contains(c))
}

/// The user and password of an `Authorization: Basic` header.
fn credentials(request: &Request) -> Option<(String, String)> {
    let value = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let (user, password) = String::from_utf8(decoded)
        .ok()?
        .split_once(':')
        .map(|(u, p)| (u.to_string(), p.to_string()))?;
    Some((user, password))
}

pub async fn require_basic_auth(
    State(users): State<Arc<Users>>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path() == OPEN_PATH {
        return next.run(request).await;
    }
    let allowed = match credentials(&request) {
        None => false,
        Some((user, password)) if users.seen(&user, &password) => true,
        // bcrypt takes milliseconds of CPU on purpose: off the async threads.
        Some((user, password)) => {
            tokio::task::spawn_blocking(move || users.allows(&user, &password))
                .await
                .unwrap_or(false)
        }
    };
    if allowed {
        next.run(request).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(WWW_AUTHENTICATE, "Basic realm=\"mining-exporter\"")],
            "Unauthorized\n",
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcrypt_hashes_are_recognised_by_shape() {
        let hash = bcrypt::hash("pw", 4).unwrap();
        assert_eq!(bcrypt_cost(&hash), Some(4));
        assert_eq!(
            bcrypt_cost("$2y$10$abcdefghijklmnopqrstuv0123456789ABCDEFGHIJKLMNOPQRSTU"),
            Some(10)
        );
        assert_eq!(bcrypt_cost("secret"), None);
        assert_eq!(
            bcrypt_cost("$2y$99$abcdefghijklmnopqrstuv0123456789ABCDEFGHIJKLMNOPQRSTU"),
            None
        );
        assert_eq!(bcrypt_cost("$1$salt$hash"), None);
    }

    /// The last user of the file (in name order) once set the decoy's cost: a cheaper decoy
    /// than a real check lets timing tell which user names exist.
    #[test]
    fn the_decoy_costs_what_the_dearest_real_check_costs() {
        let hashes = BTreeMap::from([
            ("alice".to_string(), bcrypt::hash("a", 7).unwrap()),
            ("zed".to_string(), bcrypt::hash("z", 4).unwrap()),
        ]);
        assert_eq!(Users::new(hashes).unwrap().decoy_cost(), Some(7));
    }

    #[tokio::test]
    async fn verified_credentials_cost_one_bcrypt_check_and_wrong_ones_every_time() {
        use axum::body::Body;
        use tower::ServiceExt;
        let hashes =
            BTreeMap::from([("prometheus".to_string(), bcrypt::hash("right", 4).unwrap())]);
        let users = Arc::new(Users::new(hashes).unwrap());
        let app = axum::Router::new()
            .route("/metrics", axum::routing::get(|| async { "ok" }))
            .layer(axum::middleware::from_fn_with_state(
                users.clone(),
                require_basic_auth,
            ));
        let ask = |user: &str, password: &str| {
            let value =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            let request = Request::builder()
                .uri("/metrics")
                .header(AUTHORIZATION, format!("Basic {value}"))
                .body(Body::empty())
                .unwrap();
            let app = app.clone();
            async move { app.oneshot(request).await.unwrap().status() }
        };
        for _ in 0..5 {
            assert_eq!(ask("prometheus", "right").await, StatusCode::OK);
        }
        assert_eq!(users.bcrypt_checks(), 1, "one check, then the cache");
        for _ in 0..3 {
            assert_eq!(ask("prometheus", "wrong").await, StatusCode::UNAUTHORIZED);
        }
        assert_eq!(ask("nobody", "right").await, StatusCode::UNAUTHORIZED);
        assert_eq!(ask("nobody", "right").await, StatusCode::UNAUTHORIZED);
        assert_eq!(
            users.bcrypt_checks(),
            6,
            "every refused attempt pays in full"
        );
        assert_eq!(ask("prometheus", "right").await, StatusCode::OK);
        assert_eq!(users.bcrypt_checks(), 6);
    }
}
