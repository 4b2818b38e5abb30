//! TLS and mutual TLS on the gRPC listener, with certificates made by rcgen for each test.

use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio::task::JoinHandle;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::helpers::build_app;

/// A test CA, a server certificate for localhost and 127.0.0.1, and a client certificate,
/// written as PEM files.
struct Pki {
    ca: String,
    server_cert: PathBuf,
    server_key: PathBuf,
    ca_file: PathBuf,
    client: Identity,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let signed = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server_pem, server_key_pem) = signed(vec!["localhost".into(), "127.0.0.1".into()]);
    let (client_pem, client_key_pem) = signed(vec!["client.test".into()]);
    let dir = std::env::temp_dir().join(format!("qbo-sync-tls-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    Pki {
        ca: ca.pem(),
        server_cert: write("server.pem", &server_pem),
        server_key: write("server.key", &server_key_pem),
        ca_file: write("ca.pem", &ca.pem()),
        client_cert: write("client.pem", &client_pem),
        client_key: write("client.key", &client_key_pem),
        client: Identity::from_pem(client_pem, client_key_pem),
    }
}

/// Starts a server with `flags` (TLS ones among them) and returns its gRPC port.
async fn serve(flags: &[&str]) -> (u16, JoinHandle<anyhow::Result<()>>) {
    let mut all = vec!["--insecure-no-auth"];
    all.extend_from_slice(flags);
    let (app, _db) = build_app(&all).await.expect("build");
    let port = app.grpc_addr().port();
    (port, tokio::spawn(app.run()))
}

async fn check(channel: Result<Channel, tonic::transport::Error>) -> Result<(), String> {
    let channel = channel.map_err(|e| format!("connect: {e}"))?;
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(drop)
        .map_err(|e| format!("call: {e}"))
}

async fn tls_channel(
    port: u16,
    pki: &Pki,
    identity: bool,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca))
        .domain_name("localhost");
    if identity {
        tls = tls.identity(pki.client.clone());
    }
    Channel::from_shared(format!("https://127.0.0.1:{port}"))
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await
}

async fn plain_channel(port: u16) -> Result<Channel, tonic::transport::Error> {
    Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await
}

#[tokio::test]
async fn a_tls_listener_answers_tls_clients_only() {
    let pki = pki();
    let cert = pki.server_cert.to_str().unwrap();
    let key = pki.server_key.to_str().unwrap();
    let (port, _server) = serve(&["--tls-cert", cert, "--tls-key", key]).await;
    check(tls_channel(port, &pki, false).await)
        .await
        .expect("a TLS client is served");
    let plain = check(plain_channel(port).await).await;
    assert!(plain.is_err(), "a plaintext client must fail: {plain:?}");
}

#[tokio::test]
async fn with_a_client_ca_a_client_needs_a_certificate() {
    let pki = pki();
    let cert = pki.server_cert.to_str().unwrap();
    let key = pki.server_key.to_str().unwrap();
    let ca = pki.ca_file.to_str().unwrap();
    let (port, _server) =
        serve(&["--tls-cert", cert, "--tls-key", key, "--tls-client-ca", ca]).await;
    check(tls_channel(port, &pki, true).await)
        .await
        .expect("a client with a certificate is served");
    let anonymous = check(tls_channel(port, &pki, false).await).await;
    assert!(
        anonymous.is_err(),
        "a client without a certificate must be refused: {anonymous:?}"
    );
}

#[tokio::test]
async fn half_a_tls_configuration_refuses_to_start() {
    let pki = pki();
    let cert = pki.server_cert.to_str().unwrap();
    let key = pki.server_key.to_str().unwrap();
    let ca = pki.ca_file.to_str().unwrap();
    for (flags, wanted) in [
        (
            vec!["--tls-cert", cert],
            "QBO_SYNC_TLS_CERT is set without QBO_SYNC_TLS_KEY",
        ),
        (
            vec!["--tls-key", key],
            "QBO_SYNC_TLS_KEY is set without QBO_SYNC_TLS_CERT",
        ),
        (vec!["--tls-client-ca", ca], "QBO_SYNC_TLS_CLIENT_CA needs"),
        (vec!["--tls-cert", key, "--tls-key", cert], "not acceptable"),
    ] {
        let mut all = vec!["--insecure-no-auth"];
        all.extend(flags);
        let error = build_app(&all).await.err().expect("must refuse");
        assert!(format!("{error:#}").contains(wanted), "{error:#}");
    }
}

/// `qbo-sync ctl` over mutual TLS: the server's answer (NOT_FOUND, exit 3) proves the
/// handshake; without the test CA the server's certificate is not trusted (exit 4).
#[tokio::test]
async fn ctl_speaks_mutual_tls_with_its_ca_and_client_certificate() {
    let pki = pki();
    let path = |p: &PathBuf| p.to_str().unwrap().to_owned();
    let (cert, key, ca) = (
        path(&pki.server_cert),
        path(&pki.server_key),
        path(&pki.ca_file),
    );
    let (port, _server) = serve(&[
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--tls-client-ca",
        &ca,
    ])
    .await;
    let ctl = |tls: Vec<String>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_qbo-sync"));
        command
            .args(["ctl", "--addr", &format!("https://localhost:{port}")])
            .args(["--tenant", "t1", "status", "d-1"])
            .args(tls)
            .env_remove("QBO_SYNC_CA_FILE");
        tokio::task::spawn_blocking(move || command.output().unwrap())
    };
    let mutual = vec![
        "--ca-file".into(),
        ca.clone(),
        "--cert-file".into(),
        path(&pki.client_cert),
        "--key-file".into(),
        path(&pki.client_key),
    ];
    let answered = ctl(mutual).await.unwrap();
    let stderr = String::from_utf8_lossy(&answered.stderr);
    assert_eq!(answered.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("NOT_FOUND"), "{stderr}");

    let untrusted = ctl(Vec::new()).await.unwrap();
    let stderr = String::from_utf8_lossy(&untrusted.stderr);
    assert_eq!(untrusted.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("UNAVAILABLE: cannot reach"), "{stderr}");
}
