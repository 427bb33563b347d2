//! The real binary over real TLS on loopback: it answers an AdmissionReview and its probes; the
//! certificate files are then replaced the way the kubelet updates a Secret volume (a new
//! timestamped directory and one rename of the `..data` symlink), and the next connection sees
//! the new certificate while a connection opened before the swap keeps working. No restart.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
}

fn ca() -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "webhook test CA");
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).unwrap();
    Ca {
        der: cert.der().clone(),
        issuer: Issuer::new(params, key),
    }
}

/// A serving certificate for the webhook's Service name and loopback: (cert PEM, key PEM, DER).
fn leaf(ca: &Ca, serial: &str) -> (String, String, CertificateDer<'static>) {
    let mut params = CertificateParams::new(vec![
        "infisical-materializer-webhook.infisical-materializer.svc".into(),
        "127.0.0.1".into(),
    ])
    .unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("webhook {serial}"));
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (cert.pem(), key.serialize_pem(), cert.der().clone())
}

/// Writes a Secret volume's layout: `..TIMESTAMP/{tls.crt,tls.key}`, `..data` → it, and
/// `tls.crt` → `..data/tls.crt`. Later calls swap `..data` atomically.
fn publish(dir: &Path, generation: u32, cert: &str, key: &str) {
    let versioned = dir.join(format!("..2026_01_01_00_00_0{generation}.000000001"));
    std::fs::create_dir(&versioned).unwrap();
    std::fs::write(versioned.join("tls.crt"), cert).unwrap();
    std::fs::write(versioned.join("tls.key"), key).unwrap();
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(versioned.file_name().unwrap(), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for name in ["tls.crt", "tls.key"] {
        let link = dir.join(name);
        if link.symlink_metadata().is_err() {
            std::os::unix::fs::symlink(format!("..data/{name}"), &link).unwrap();
        }
    }
}

struct Webhook(Child);

impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn client(ca: &Ca) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.der.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

type Tls = StreamOwned<ClientConnection, TcpStream>;

/// A verified TLS connection (as the API server makes it: by the Service's DNS name).
fn connect(config: &Arc<ClientConfig>, port: u16) -> std::io::Result<Tls> {
    let name =
        ServerName::try_from("infisical-materializer-webhook.infisical-materializer.svc").unwrap();
    let connection = ClientConnection::new(Arc::clone(config), name).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut tls = StreamOwned::new(connection, tcp);
    tls.flush()?;
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

fn served_certificate(tls: &Tls) -> CertificateDer<'static> {
    tls.conn.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

/// One HTTP/1.1 request on a kept-alive connection: (status, body).
fn request(tls: &mut Tls, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    write!(
        tls,
        "{method} {path} HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    tls.write_all(body).unwrap();
    tls.flush().unwrap();
    let mut reader = BufReader::new(tls);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).unwrap();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status line: {status_line:?}"));
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap();
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    (status, String::from_utf8(body).unwrap())
}

fn review() -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "b1c2d3e4-0000-4000-8000-000000000001",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "shop",
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "generateName": "orders-",
                    "labels": {"infisical-materializer.io/inject": "true"},
                    "annotations": {
                        "infisical-materializer.io/project-slug": "orders",
                        "infisical-materializer.io/env": "prod",
                        "infisical-materializer.io/identity-id": "00000000-0000-4000-8000-00000000abcd",
                    },
                },
                "spec": {"containers": [{"name": "app", "image": "busybox:1.36", "command": ["sleep", "1d"]}]},
            },
            "dryRun": false,
        },
    }))
    .unwrap()
}

#[test]
fn serves_reviews_over_tls_and_picks_up_a_rotated_certificate_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    let (cert1, key1, der1) = leaf(&ca, "1");
    publish(dir.path(), 1, &cert1, &key1);

    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_infisical-materializer-webhook"))
        .arg(format!("--listen=127.0.0.1:{port}"))
        .arg(format!(
            "--tls-cert-file={}",
            dir.path().join("tls.crt").display()
        ))
        .arg(format!(
            "--tls-key-file={}",
            dir.path().join("tls.key").display()
        ))
        .arg("--log-format=text")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the webhook");
    let pid = child.id();
    let config = client(&ca);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut first = loop {
        match connect(&config, port) {
            Ok(tls) => break tls,
            Err(_) if Instant::now() < deadline => {
                assert!(child.try_wait().unwrap().is_none(), "the webhook exited");
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(error) => panic!("the webhook never accepted a TLS connection: {error}"),
        }
    };
    let webhook = Webhook(child);
    assert_eq!(served_certificate(&first), der1);

    let (status, body) = request(&mut first, "POST", "/mutate", &review());
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        answer["response"]["uid"],
        "b1c2d3e4-0000-4000-8000-000000000001"
    );
    assert_eq!(answer["response"]["allowed"], true);
    assert_eq!(answer["response"]["patchType"], "JSONPatch");
    for path in ["/healthz", "/readyz"] {
        assert_eq!(request(&mut first, "GET", path, b"").0, 200, "{path}");
    }
    let (status, metrics) = request(&mut first, "GET", "/metrics", b"");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("infisical_materializer_webhook_reviews_total{result=\"injected\"} 1"),
        "{metrics}"
    );

    // cert-manager renews: the kubelet swaps the Secret volume's ..data link.
    let (cert2, key2, der2) = leaf(&ca, "2");
    assert_ne!(der1, der2);
    publish(dir.path(), 2, &cert2, &key2);

    let deadline = Instant::now() + Duration::from_secs(10);
    let mut fresh = loop {
        let tls = connect(&config, port).expect("a new connection after the rotation");
        if served_certificate(&tls) == der2 {
            break tls;
        }
        assert!(
            Instant::now() < deadline,
            "new connections still get the old certificate 10 s after the files changed"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let (status, body) = request(&mut fresh, "POST", "/mutate", &review());
    assert_eq!(status, 200, "{body}");

    // The connection opened before the swap was not dropped: it keeps its certificate.
    let (status, _) = request(&mut first, "POST", "/mutate", &review());
    assert_eq!(status, 200);
    assert_eq!(served_certificate(&first), der1);

    let (_, metrics) = request(&mut fresh, "GET", "/metrics", b"");
    assert!(
        metrics.contains(
            "infisical_materializer_webhook_certificate_reloads_total{result=\"success\"} 1"
        ),
        "{metrics}"
    );
    // Still the same process: nothing restarted.
    assert_eq!(webhook.0.id(), pid);
    drop(webhook);
}

#[test]
fn refuses_to_start_without_a_usable_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_infisical-materializer-webhook"))
        .arg(format!(
            "--tls-cert-file={}",
            dir.path().join("missing.crt").display()
        ))
        .arg(format!(
            "--tls-key-file={}",
            dir.path().join("missing.key").display()
        ))
        .arg("--log-format=text")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("missing.crt") && stderr.contains("--tls-cert-file"),
        "{stderr}"
    );
}
