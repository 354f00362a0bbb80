//! The generic source against the API shapes past json_exporter's that need a live server:
//! statuses and bodies, optional endpoints, POST bodies and clock templates, headers per
//! endpoint, query signing, per-source TLS, the new paginations, and duplicates counted.
//! The shapes a single answer shows (object keys, templates, filters, values, transforms)
//! are golden cases in tests/fixtures/http_json/shapes/.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use httpmock::prelude::*;
use mining_exporter::scheduler::Outcome;
use serde_json::json;

use crate::common::*;
use crate::http_json::{generic, poll};

const WORKERS: &str = r#"
[[sources.endpoints.metrics]]
name = "mining_worker_up"
items = "$.items[*]"
value = "$.up"
labels = { account = "a", worker = "$.name" }
"#;

async fn calls(mocks: &[httpmock::Mock<'_>]) -> Vec<usize> {
    let mut calls = Vec::new();
    for mock in mocks {
        calls.push(mock.calls_async().await);
    }
    calls
}

fn up(names: &[&str]) -> serde_json::Value {
    json!(
        names
            .iter()
            .map(|n| json!({"name": n, "up": 1}))
            .collect::<Vec<_>>()
    )
}

#[tokio::test]
async fn listed_statuses_are_answers_and_others_fail_the_poll() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.path("/gone");
            then.status(404).json_body(json!({"items": up(&["w404"])}));
        })
        .await;
    server
        .mock_async(|when, then| {
            when.path("/accepted");
            then.status(202).json_body(json!({"items": up(&["w202"])}));
        })
        .await;
    let block = |path: &str, codes: &str| {
        format!("[[sources.endpoints]]\npath = \"{path}\"\n{codes}\n{WORKERS}")
    };
    let (listed, _d) = generic(
        &server.base_url(),
        &block("/gone", "valid_status_codes = [200, 404]"),
    );
    assert!(matches!(poll(&listed, "h").await, Outcome::Success { .. }));
    assert_eq!(
        sample(&text(&listed), "mining_worker_up", &["worker=\"w404\""]),
        Some(1.0)
    );

    let (any_2xx, _d) = generic(&server.base_url(), &block("/accepted", ""));
    assert!(matches!(poll(&any_2xx, "h").await, Outcome::Success { .. }));
    let (only_200, _d) = generic(
        &server.base_url(),
        &block("/accepted", "valid_status_codes = [200]"),
    );
    assert_eq!(
        poll(&only_200, "h").await,
        Outcome::Failure { kind: "http" }
    );
    let (unlisted_404, _d) = generic(&server.base_url(), &block("/gone", ""));
    assert_eq!(
        poll(&unlisted_404, "h").await,
        Outcome::Failure { kind: "not_found" }
    );
}

#[tokio::test]
async fn a_204_or_an_empty_body_is_a_page_with_no_items() {
    let server = MockServer::start_async().await;
    let nothing = server
        .mock_async(|when, then| {
            when.path("/none");
            then.status(204);
        })
        .await;
    let page1 = server
        .mock_async(|when, then| {
            when.path("/list").query_param("page", "1");
            then.status(200).json_body(json!({"items": up(&["w1"])}));
        })
        .await;
    let page2 = server
        .mock_async(|when, then| {
            when.path("/list").query_param("page", "2");
            then.status(200).body("");
        })
        .await;
    let block = format!(
        "[[sources.endpoints]]\nname = \"none\"\npath = \"/none\"\n{WORKERS}\n[[sources.endpoints]]\nname = \"list\"\npath = \"/list\"\n[sources.endpoints.pagination]\ntype = \"page\"\n{WORKERS}"
    );
    let (exporter, _d) = generic(&server.base_url(), &block);
    assert!(matches!(
        poll(&exporter, "h").await,
        Outcome::Success { .. }
    ));
    assert_eq!(
        (
            nothing.calls_async().await,
            page1.calls_async().await,
            page2.calls_async().await
        ),
        (1, 1, 1),
        "the empty second page ends the walk"
    );
    let page = text(&exporter);
    assert_eq!(
        sample(&page, "mining_worker_up", &["worker=\"w1\""]),
        Some(1.0)
    );
    assert_eq!(
        sample(&page, "mining_workers", &["state=\"active\""]),
        Some(1.0)
    );
}

#[tokio::test]
async fn an_error_code_inside_a_200_fails_the_poll_with_the_api_s_message() {
    let server = MockServer::start_async().await;
    let failing = server
        .mock_async(|when, then| {
            when.path("/coded");
            then.status(200)
                .json_body(json!({"err_no": 2, "err_msg": {"msg": "Operation failed"}}));
        })
        .await;
    let block = format!(
        "[[sources.endpoints]]\npath = \"/coded\"\nerror = {{ path = \"$.err_no\", ok = [0], message = \"$.err_msg.msg\" }}\n{WORKERS}"
    )
    .replace("$.items[*]", "$.data.items[*]");
    let (exporter, _d) = generic(&server.base_url(), &block);
    let (logs, _guard) = capture_logs();
    assert_eq!(
        poll(&exporter, "h").await,
        Outcome::Failure { kind: "decode" }
    );
    let logged = logs.text();
    assert!(
        logged.contains("the API answered 200 with an error at $.err_no: 2: Operation failed"),
        "{logged}"
    );
    failing.delete_async().await;
    server
        .mock_async(|when, then| {
            when.path("/coded");
            then.status(200)
                .json_body(json!({"err_no": "0", "data": {"items": up(&["ok"])}}));
        })
        .await;
    assert!(
        matches!(poll(&exporter, "h").await, Outcome::Success { .. }),
        "\"0\" is the code 0"
    );
}

#[tokio::test]
async fn an_optional_endpoint_that_never_answered_is_switched_off_by_404s() {
    let server = MockServer::start_async().await;
    let missing = server
        .mock_async(|when, then| {
            when.path("/v2/extra");
            then.status(404).json_body(json!({"error": "Not Found"}));
        })
        .await;
    server
        .mock_async(|when, then| {
            when.path("/workers");
            then.status(200).json_body(json!({"items": up(&["w1"])}));
        })
        .await;
    let block = format!(
        "[[sources.endpoints]]\nname = \"extra\"\npath = \"/v2/extra\"\noptional = true\n{WORKERS}\n[[sources.endpoints]]\nname = \"workers\"\npath = \"/workers\"\n{WORKERS}"
    );
    let (exporter, _d) = generic(&server.base_url(), &block);
    for _ in 1..mining_exporter::sources::optional::SWITCH_OFF_AFTER {
        assert_eq!(
            poll(&exporter, "h").await,
            Outcome::Failure { kind: "not_found" },
            "one 404 may be a hiccup"
        );
    }
    assert!(matches!(
        poll(&exporter, "h").await,
        Outcome::Success { .. }
    ));
    assert!(matches!(
        poll(&exporter, "h").await,
        Outcome::Success { .. }
    ));
    assert_eq!(
        missing.calls_async().await,
        u64::from(mining_exporter::sources::optional::SWITCH_OFF_AFTER) as usize,
        "switched off, it is not asked again within the hour"
    );
    let page = text(&exporter);
    assert_eq!(
        sample(&page, "mining_worker_up", &["worker=\"w1\""]),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &page,
            "mining_exporter_endpoint_enabled",
            &["endpoint=\"extra\""]
        ),
        Some(0.0)
    );
}

#[tokio::test]
async fn a_post_sends_its_json_body_with_clock_fields_and_its_endpoint_s_headers() {
    let server = MockServer::start_async().await;
    let day = |offset: i64| {
        let now: chrono::DateTime<chrono::Utc> = SystemTime::now().into();
        (now + chrono::TimeDelta::days(offset))
            .format("%Y-%m-%d")
            .to_string()
    };
    // The poll may fall either side of midnight from where these are taken.
    let (yesterday, today) = (day(-1), day(0));
    let (later_yesterday, later_today) = {
        let now: chrono::DateTime<chrono::Utc> =
            (SystemTime::now() + Duration::from_secs(60)).into();
        (
            (now - chrono::TimeDelta::days(1))
                .format("%Y-%m-%d")
                .to_string(),
            now.format("%Y-%m-%d").to_string(),
        )
    };
    let post = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/v2/hash_rate/info")
                .header("content-type", "application/json")
                .header("x-api-key", TOKEN)
                .header("x-api-version", "2")
                .query_param_exists("date")
                .body_matches(format!(
                    r#"^\{{"currency":"bitcoin","range":\{{"from":"({yesterday}|{later_yesterday})","to":"({today}|{later_today})"\}},"user_name":"farm","workers":\[1,true\]\}}$"#
                ));
            then.status(200).json_body(json!({"items": up(&["posted"])}));
        })
        .await;
    let block = format!(
        "[[sources.endpoints]]\npath = \"/v2/hash_rate/info\"\nmethod = \"POST\"\nquery = {{ date = \"{{today}}\" }}\nheaders = {{ \"X-Api-Version\" = \"2\" }}\nbody = {{ currency = \"bitcoin\", user_name = \"farm\", range = {{ from = \"{{yesterday}}\", to = \"{{today}}\" }}, workers = [1, true] }}\n{WORKERS}"
    );
    let (exporter, _d) = generic(&server.base_url(), &block);
    assert!(matches!(
        poll(&exporter, "h").await,
        Outcome::Success { .. }
    ));
    assert_eq!(post.calls_async().await, 1);
    assert_eq!(
        sample(&text(&exporter), "mining_worker_up", &["worker=\"posted\""]),
        Some(1.0)
    );
}

#[tokio::test]
async fn query_signing_appends_a_timestamp_and_the_hmac_of_the_query_as_sent() {
    let server = MockServer::start_async().await;
    let signed = server
        .mock_async(|when, then| {
            when.path("/sapi/v1/mining/worker/list")
                .header("x-mbx-apikey", TOKEN)
                .header_missing("x-signature")
                .header_missing("x-nonce")
                .query_param("algo", "sha256")
                .is_true(|req| {
                    // The signature covers everything before it, exactly as sent.
                    let uri = req.uri();
                    let query = uri.query().unwrap_or_default().to_string();
                    let Some((signed_part, signature)) = query.rsplit_once("&signature=") else {
                        return false;
                    };
                    let has_timestamp = signed_part.split('&').any(|p| {
                        p.strip_prefix("timestamp=")
                            .and_then(|t| t.parse::<u128>().ok())
                            .is_some_and(|t| t > 1_700_000_000_000)
                    });
                    has_timestamp
                        && signature
                            == mining_exporter::signing::hex_hmac(
                                b"s3cret-signing",
                                signed_part.as_bytes(),
                            )
                });
            then.status(200)
                .json_body(json!({"items": up(&["signed"])}));
        })
        .await;
    let dir = tempfile::TempDir::new().unwrap();
    std::fs::write(dir.path().join("secret"), "s3cret-signing").unwrap();
    let block = format!(
        "auth_header = \"X-MBX-APIKEY\"\n[sources.signing]\nscheme = \"query\"\nsecret_file = \"{}\"\n[[sources.endpoints]]\npath = \"/sapi/v1/mining/worker/list\"\nquery = {{ algo = \"sha256\" }}\n{WORKERS}",
        dir.path().join("secret").display()
    );
    let (exporter, _d) = generic(&server.base_url(), &block);
    assert!(matches!(
        poll(&exporter, "h").await,
        Outcome::Success { .. }
    ));
    assert_eq!(signed.calls_async().await, 1);
    let logged = {
        let (logs, _guard) = capture_logs();
        assert!(matches!(
            poll(&exporter, "h").await,
            Outcome::Success { .. }
        ));
        logs.text()
    };
    assert!(!logged.contains("s3cret-signing"), "{logged}");
}

#[tokio::test]
async fn offset_pages_stop_at_a_short_page_or_at_the_total_item_count() {
    let server = MockServer::start_async().await;
    let mut pages = Vec::new();
    for (offset, names) in [(0, vec!["a", "b"]), (2, vec!["c", "d"]), (4, vec!["e"])] {
        pages.push(
            server
                .mock_async(|when, then| {
                    when.path("/list")
                        .query_param("offset", offset.to_string())
                        .query_param("limit", "2");
                    then.status(200)
                        .json_body(json!({"items": up(&names), "total": 4}));
                })
                .await,
        );
    }
    let block = |extra: &str| {
        format!(
            "[[sources.endpoints]]\npath = \"/list\"\n[sources.endpoints.pagination]\ntype = \"offset\"\nsize_param = \"limit\"\nsize = 2\n{extra}\n{WORKERS}"
        )
    };
    let (short_page, _d) = generic(&server.base_url(), &block(""));
    assert!(matches!(
        poll(&short_page, "h").await,
        Outcome::Success { .. }
    ));
    let page = text(&short_page);
    assert_eq!(
        sample(&page, "mining_workers", &["state=\"active\""]),
        Some(5.0)
    );
    assert_eq!(
        calls(&pages).await,
        [1, 1, 1],
        "the short third page ends it"
    );
    let (by_total, _d) = generic(&server.base_url(), &block("total_items = \"$.total\""));
    assert!(matches!(
        poll(&by_total, "h").await,
        Outcome::Success { .. }
    ));
    assert_eq!(
        calls(&pages).await,
        [2, 2, 1],
        "4 of 4 items read after two pages"
    );
    assert_eq!(
        sample(&text(&by_total), "mining_workers", &["state=\"active\""]),
        Some(4.0)
    );
}

#[tokio::test]
async fn page_numbers_stop_at_the_total_item_count() {
    let server = MockServer::start_async().await;
    let mut pages = Vec::new();
    for n in 1..=3 {
        pages.push(
            server
                .mock_async(|when, then| {
                    when.path("/list").query_param("page", n.to_string());
                    then.status(200).json_body(
                        json!({"items": up(&[&format!("w{n}a"), &format!("w{n}b")]), "count": "4"}),
                    );
                })
                .await,
        );
    }
    let block = format!(
        "[[sources.endpoints]]\npath = \"/list\"\n[sources.endpoints.pagination]\ntype = \"page\"\ntotal_items = \"$.count\"\n{WORKERS}"
    );
    let (exporter, _d) = generic(&server.base_url(), &block);
    assert!(matches!(
        poll(&exporter, "h").await,
        Outcome::Success { .. }
    ));
    assert_eq!(calls(&pages).await, [1, 1, 0]);
}

#[tokio::test]
async fn link_headers_are_followed_on_the_api_s_origin_only() {
    let server = MockServer::start_async().await;
    let first = server
        .mock_async(|when, then| {
            when.path("/workers").query_param_missing("page");
            then.status(200)
                .header(
                    "link",
                    r#"</workers?page=2>; rel="next", </workers?page=9>; rel="last""#,
                )
                .json_body(json!({"items": up(&["w1"])}));
        })
        .await;
    let second = server
        .mock_async(|when, then| {
            when.path("/workers").query_param("page", "2");
            then.status(200)
                .header("link", r#"</workers?page=1>; rel="prev""#)
                .json_body(json!({"items": up(&["w2"])}));
        })
        .await;
    let block = format!(
        "[[sources.endpoints]]\npath = \"/workers\"\n[sources.endpoints.pagination]\ntype = \"link_header\"\n{WORKERS}"
    );
    let (exporter, _d) = generic(&server.base_url(), &block);
    assert!(matches!(
        poll(&exporter, "h").await,
        Outcome::Success { .. }
    ));
    assert_eq!(
        (first.calls_async().await, second.calls_async().await),
        (1, 1)
    );
    assert_eq!(
        sample(&text(&exporter), "mining_workers", &["state=\"active\""]),
        Some(2.0)
    );

    let elsewhere = MockServer::start_async().await;
    let stray = elsewhere
        .mock_async(|when, then| {
            when.any_request();
            then.status(200).json_body(json!({"items": []}));
        })
        .await;
    let away = MockServer::start_async().await;
    let link = format!("<{}/steal>; rel=next", elsewhere.base_url());
    away.mock_async(|when, then| {
        when.path("/workers");
        then.status(200)
            .header("link", link)
            .json_body(json!({"items": up(&["w1"])}));
    })
    .await;
    let (leaving, _d) = generic(&away.base_url(), &block);
    assert_eq!(
        poll(&leaving, "h").await,
        Outcome::Failure { kind: "decode" }
    );
    assert_eq!(
        stray.calls_async().await,
        0,
        "the token never went elsewhere"
    );
}

#[tokio::test]
async fn a_label_set_given_twice_keeps_the_first_is_counted_and_warned_about_once() {
    let server = MockServer::start_async().await;
    for (page, items) in [
        (1, json!([{"name": "r1", "up": 1}, {"name": "r1", "up": 0}])),
        (2, json!([{"name": "r1", "up": 0}, {"name": "r2", "up": 1}])),
        (3, json!([])),
    ] {
        server
            .mock_async(|when, then| {
                when.path("/list").query_param("page", page.to_string());
                then.status(200).json_body(json!({"items": items}));
            })
            .await;
    }
    let block = format!(
        "[[sources.endpoints]]\npath = \"/list\"\n[sources.endpoints.pagination]\ntype = \"page\"\n{WORKERS}"
    );
    let (exporter, _d) = generic(&server.base_url(), &block);
    let (logs, _guard) = capture_logs();
    for _ in 0..2 {
        assert!(matches!(
            poll(&exporter, "h").await,
            Outcome::Success { .. }
        ));
    }
    let page = text(&exporter);
    assert_eq!(
        sample(&page, "mining_worker_up", &["worker=\"r1\""]),
        Some(1.0),
        "the first kept"
    );
    assert_eq!(
        sample(&page, "mining_worker_up", &["worker=\"r2\""]),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &page,
            "mining_exporter_items_skipped_total",
            &["reason=\"duplicate\""]
        ),
        Some(4.0),
        "one within a page and one across pages, in each of two polls"
    );
    let logged = logs.text();
    assert_eq!(
        logged
            .matches("the answer gave one label set more than once")
            .count(),
        1,
        "{logged}"
    );
}

/// A TLS API at 127.0.0.1 whose certificate a private CA signed, asking for a client
/// certificate from the same CA; it answers every path with one worker.
async fn tls_api(dir: &std::path::Path) -> String {
    use rcgen::{
        BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    use rustls::pki_types::PrivateKeyDer;

    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    let mut issued = Vec::new();
    for (name, san, usage) in [
        ("server", "127.0.0.1", ExtendedKeyUsagePurpose::ServerAuth),
        ("client", "exporter", ExtendedKeyUsagePurpose::ClientAuth),
    ] {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![san.to_string()]).unwrap();
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &issuer).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
        issued.push((cert.der().clone(), key.serialize_der()));
    }
    mining_exporter::client::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca_cert.der().clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
        .build()
        .unwrap();
    let (server_cert, server_key) = issued.swap_remove(0);
    let mut config = rustls::ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![server_cert],
            PrivateKeyDer::try_from(server_key).unwrap(),
        )
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new()
        .fallback(|| async { axum::Json(json!({"items": [{"name": "tls-rig", "up": 1}]})) });
    let server = axum_server::from_tcp_rustls(
        listener,
        axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(config)),
    )
    .unwrap();
    tokio::spawn(async move {
        let _ = server.serve(app.into_make_service()).await;
    });
    format!("https://127.0.0.1:{port}")
}

#[tokio::test]
async fn a_source_trusts_its_own_ca_and_shows_its_client_certificate() {
    let dir = tempfile::TempDir::new().unwrap();
    let base = tls_api(dir.path()).await;
    let file = |name: &str| dir.path().join(name).display().to_string();
    let endpoint = format!("[[sources.endpoints]]\npath = \"/workers\"\n{WORKERS}");
    let (both, _d) = generic(
        &base,
        &format!(
            "[sources.tls]\nca_file = \"{}\"\ncert_file = \"{}\"\nkey_file = \"{}\"\n{endpoint}",
            file("ca.pem"),
            file("client.pem"),
            file("client.key")
        ),
    );
    assert!(matches!(poll(&both, "h").await, Outcome::Success { .. }));
    assert_eq!(
        sample(&text(&both), "mining_worker_up", &["worker=\"tls-rig\""]),
        Some(1.0)
    );

    let (no_client_cert, _d) = generic(
        &base,
        &format!(
            "[sources.tls]\nca_file = \"{}\"\n{endpoint}",
            file("ca.pem")
        ),
    );
    assert_eq!(
        poll(&no_client_cert, "h").await,
        Outcome::Failure { kind: "transport" },
        "the API asks for a client certificate"
    );
    let (system_roots, _d) = generic(&base, &endpoint);
    assert_eq!(
        poll(&system_roots, "h").await,
        Outcome::Failure { kind: "transport" },
        "the private CA is not among the system's roots"
    );
}
