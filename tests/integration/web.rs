//! `run --web.config.file`: real TLS connections (certificates made here with rcgen) and basic
//! auth with bcrypt hashes, against the binary as an operator runs it.

use std::path::Path;
use std::process::{Command, Stdio};

use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};

use crate::common::*;

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files in `dir`.
fn make_certificates(dir: &Path) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    std::fs::write(dir.join("ca.crt"), ca_cert.pem()).unwrap();

    for (name, sans, usage) in [
        (
            "server",
            vec!["127.0.0.1".to_string()],
            ExtendedKeyUsagePurpose::ServerAuth,
        ),
        (
            "client",
            vec!["prometheus".to_string()],
            ExtendedKeyUsagePurpose::ClientAuth,
        ),
    ] {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(sans).unwrap();
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &issuer).unwrap();
        std::fs::write(dir.join(format!("{name}.crt")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    }
}

/// The exporter binary serving with `web_config`, against a pool that refuses every token;
/// killed when dropped.
struct Served {
    _process: KillOnDrop,
    port: u16,
    dir: tempfile::TempDir,
}

fn serve(web_config: &str, server: &httpmock::MockServer) -> Served {
    let (dir, config, port) = served_config(&config_text(&server.base_url(), ""));
    make_certificates(dir.path());
    let web = dir.path().join("web.yml");
    std::fs::write(&web, web_config).unwrap();
    let child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .arg("--web.config.file")
        .arg(&web)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Served {
        _process: KillOnDrop(child),
        port,
        dir,
    }
}

/// A client trusting the test CA, with the client certificate when `identity` is set.
fn tls_client(dir: &Path, identity: bool) -> reqwest::Client {
    mining_exporter::client::install_crypto_provider();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(dir.join("ca.crt")).unwrap()).unwrap();
    let mut builder = reqwest::Client::builder()
        .tls_certs_only([ca])
        .timeout(std::time::Duration::from_secs(5));
    if identity {
        let mut pem = std::fs::read(dir.join("client.crt")).unwrap();
        pem.extend(std::fs::read(dir.join("client.key")).unwrap());
        builder = builder.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    builder.build().unwrap()
}

/// Waits until the TLS port answers anything (a 401 counts).
async fn wait_up(client: &reqwest::Client, base: &str) {
    for _ in 0..150 {
        if client.get(format!("{base}/-/healthy")).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{base} did not answer within 15 s");
}

#[tokio::test]
async fn tls_and_basic_auth_let_only_the_right_password_read_the_page() {
    let server = httpmock::MockServer::start_async().await;
    refuse_every_request(&server).await;
    let hash = bcrypt::hash("s3cret-pass", 4).unwrap();
    let served = serve(
        &format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  prometheus: {hash}\n"
        ),
        &server,
    );
    let base = format!("https://127.0.0.1:{}", served.port);
    let client = tls_client(served.dir.path(), false);
    wait_up(&client, &base).await;

    let get = |user: Option<(&str, &str)>, path: &str| {
        let mut request = client.get(format!("{base}{path}"));
        if let Some((u, p)) = user {
            request = request.basic_auth(u, Some(p));
        }
        request.send()
    };
    let page = get(Some(("prometheus", "s3cret-pass")), "/metrics")
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let text = page.text().await.unwrap();
    assert!(text.contains("mining_exporter_source_up"), "{text}");

    for (what, user) in [
        ("no credentials", None),
        ("a wrong password", Some(("prometheus", "guess"))),
        ("an unknown user", Some(("admin", "s3cret-pass"))),
    ] {
        for path in ["/metrics", "/", "/-/ready"] {
            let answer = get(user, path).await.unwrap();
            assert_eq!(answer.status(), 401, "{what} on {path}");
            assert_eq!(
                answer.headers()["www-authenticate"],
                "Basic realm=\"mining-exporter\""
            );
        }
    }
    // Liveness stays open.
    assert_eq!(get(None, "/-/healthy").await.unwrap().status(), 200);

    // Plain HTTP to the TLS port gets no page.
    let plain = http()
        .get(format!("http://127.0.0.1:{}/metrics", served.port))
        .basic_auth("prometheus", Some("s3cret-pass"))
        .send()
        .await;
    match plain {
        Err(_) => {}
        Ok(answer) => {
            let body = answer.text().await.unwrap_or_default();
            assert!(!body.contains("mining_exporter_source_up"), "{body}");
        }
    }
}

#[tokio::test]
async fn a_verified_client_certificate_is_required_when_configured() {
    let server = httpmock::MockServer::start_async().await;
    refuse_every_request(&server).await;
    let served = serve(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_ca_file: ca.crt\n  client_auth_type: RequireAndVerifyClientCert\n",
        &server,
    );
    let base = format!("https://127.0.0.1:{}", served.port);
    let with_cert = tls_client(served.dir.path(), true);
    wait_up(&with_cert, &base).await;
    let page = with_cert
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let without = tls_client(served.dir.path(), false);
    assert!(
        without.get(format!("{base}/metrics")).send().await.is_err(),
        "served a client without a certificate"
    );
}

#[test]
fn a_bad_web_config_is_refused_naming_the_file_key_and_fix() {
    let dir = tempfile::TempDir::new().unwrap();
    make_certificates(dir.path());
    std::fs::write(dir.path().join("token"), TOKEN).unwrap();
    std::fs::write(dir.path().join("config.toml"), SOURCE_BLOCK).unwrap();
    let cases = [
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS10\n",
            "tls_server_config.min_version",
            "rustls speaks TLS 1.2 and 1.3 only",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS13\n  max_version: TLS12\n",
            "tls_server_config.max_version",
            "below min_version",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA]\n",
            "tls_server_config.cipher_suites[0]",
            "rustls does not offer TLS_RSA_WITH_AES_128_CBC_SHA",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  curve_preferences: [CurveP521]\n",
            "tls_server_config.curve_preferences[0]",
            "rustls with ring does not offer CurveP521",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_ca_file: ca.crt\n  client_auth_type: RequireAndVerifyClientCert\n  client_allowed_sans: [prometheus]\n",
            "tls_server_config.client_allowed_sans",
            "cannot be honoured",
        ),
        (
            "http_server_config:\n  headers:\n    Server: mine\n",
            "http_server_config.headers.Server",
            "not one of the headers",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  tls_ciphers: x\n",
            "(yaml)",
            "unknown field `tls_ciphers`",
        ),
        (
            "tls_server_config:\n  cert_file: missing.crt\n  key_file: server.key\n",
            "tls_server_config.cert_file",
            "cannot read certificates from",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: client.key\n",
            "tls_server_config.key_file",
            "the key does not fit the certificate",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n",
            "tls_server_config.client_ca_file",
            "needs the CA",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_ca_file: ca.crt\n  client_auth_type: RequireAnyClientCert\n",
            "tls_server_config.client_auth_type",
            "without verifying",
        ),
        (
            "basic_auth_users:\n  prometheus: plain-password\n",
            "basic_auth_users.prometheus",
            "not a bcrypt hash",
        ),
        // As exporter-toolkit refuses it: a CA without a policy would check no client.
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_ca_file: ca.crt\n",
            "tls_server_config.client_auth_type",
            "no client certificate would be asked for",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_ca_file: ca.crt\n  client_auth_type: NoClientCert\n",
            "tls_server_config.client_auth_type",
            "no client certificate would be asked for",
        ),
    ];
    for (web, key, problem) in cases {
        let file = dir.path().join("web.yml");
        std::fs::write(&file, web).unwrap();
        let out = Command::new(BIN)
            .args(["run", "--config"])
            .arg(dir.path().join("config.toml"))
            .arg("--web.config.file")
            .arg(&file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{web}: {stderr}");
        let expected_start = format!("error: {}: {key}: ", file.display());
        assert!(stderr.starts_with(&expected_start), "{web}: {stderr}");
        assert!(stderr.contains(problem), "{web}: {stderr}");
        assert!(stderr.contains("\n  fix: "), "{web}: {stderr}");
        assert!(
            !stderr.contains("plain-password"),
            "echoed the password: {stderr}"
        );
    }
}

const SOURCE_BLOCK: &str = "[[sources]]\nkind = \"ultimate_proxy\"\nname = \"p\"\nbase_url = \"http://127.0.0.1:1\"\ntoken_file = \"token\"\n";

#[tokio::test]
async fn a_web_config_shared_with_other_exporters_is_honoured() {
    let server = httpmock::MockServer::start_async().await;
    refuse_every_request(&server).await;
    let served = serve(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS12\n  max_version: TLS12\n  cipher_suites:\n    - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\n    - TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305\n  curve_preferences: [X25519, CurveP256]\n  prefer_server_cipher_suites: true\nhttp_server_config:\n  http2: true\n  headers:\n    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000\n",
        &server,
    );
    let base = format!("https://127.0.0.1:{}", served.port);
    let client = tls_client(served.dir.path(), false);
    wait_up(&client, &base).await;
    let answer = client
        .get(format!("{base}/-/healthy"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["x-frame-options"], "deny");
    assert_eq!(
        answer.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    assert_eq!(
        answer.version(),
        reqwest::Version::HTTP_2,
        "http2: true offers h2"
    );
    // max_version TLS12: a client that insists on TLS 1.3 is refused.
    let ca =
        reqwest::Certificate::from_pem(&std::fs::read(served.dir.path().join("ca.crt")).unwrap())
            .unwrap();
    let only_13 = reqwest::Client::builder()
        .tls_certs_only([ca])
        .tls_version_min(reqwest::tls::Version::TLS_1_3)
        .build()
        .unwrap();
    assert!(
        only_13
            .get(format!("{base}/-/healthy"))
            .send()
            .await
            .is_err()
    );
}
