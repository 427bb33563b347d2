//! The manifests in `deploy/webhook/` agree with the binary and with each other: the flags parse,
//! the injected image is the webhook's own, the objectSelector is the label the webhook reads,
//! and cert-manager writes the Secret the Deployment mounts, for the Service's DNS name.
//! (`.ci/run` validates the built-in kinds with `kubernetes-validate --strict`.)

use std::path::Path;

use clap::Parser;
use infisical_materializer_webhook::annotations::{DEFAULT_PREFIX, INJECT_LABEL};
use infisical_materializer_webhook::cli::Cli;
use serde::Deserialize;
use serde_yaml::Value;

fn documents(file: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/webhook")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter(|doc| !doc.is_null())
        .collect()
}

fn find<'a>(documents: &'a [Value], kind: &str) -> &'a Value {
    documents
        .iter()
        .find(|doc| doc["kind"].as_str() == Some(kind))
        .unwrap_or_else(|| panic!("no {kind}"))
}

#[test]
fn the_manifests_fit_the_binary_and_each_other() {
    let webhook = documents("webhook.yaml");
    let certs = documents("cert-manager.yaml");

    let deployment = find(&webhook, "Deployment");
    assert_eq!(deployment["spec"]["replicas"].as_u64(), Some(2));
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let mut argv = vec!["infisical-materializer-webhook".to_owned()];
    argv.extend(
        container["args"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned()),
    );
    let cli = Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    assert_eq!(
        Some(cli.image.as_str()),
        container["image"].as_str(),
        "--image is the webhook's own image (the image holds both binaries)"
    );
    assert_eq!(
        container["command"][0].as_str(),
        Some("/infisical-materializer-webhook")
    );
    let port: std::net::SocketAddr = cli.listen.parse().unwrap();
    assert_eq!(
        container["ports"][0]["containerPort"].as_u64(),
        Some(u64::from(port.port()))
    );
    let tls_dir = container["volumeMounts"][0]["mountPath"].as_str().unwrap();
    assert!(cli.tls_cert_file.starts_with(tls_dir) && cli.tls_key_file.starts_with(tls_dir));
    let secret = deployment["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"]
        .as_str()
        .unwrap();

    let config = find(&webhook, "MutatingWebhookConfiguration");
    let hook = &config["webhooks"][0];
    assert_eq!(hook["failurePolicy"].as_str(), Some("Fail"));
    assert_eq!(hook["sideEffects"].as_str(), Some("None"));
    assert_eq!(hook["timeoutSeconds"].as_u64(), Some(5));
    assert_eq!(
        hook["clientConfig"]["service"]["path"].as_str(),
        Some("/mutate")
    );
    let label = format!("{DEFAULT_PREFIX}{INJECT_LABEL}");
    assert_eq!(
        hook["objectSelector"]["matchLabels"][label.as_str()].as_str(),
        Some("true")
    );
    let excluded = &hook["namespaceSelector"]["matchExpressions"][0];
    assert_eq!(excluded["operator"].as_str(), Some("NotIn"));
    assert!(excluded["values"]
        .as_sequence()
        .unwrap()
        .iter()
        .any(|v| v == "kube-system"));

    let service = find(&webhook, "Service");
    let namespace = service["metadata"]["namespace"].as_str().unwrap();
    let dns = format!(
        "{}.{namespace}.svc",
        service["metadata"]["name"].as_str().unwrap()
    );
    assert_eq!(
        hook["clientConfig"]["service"]["name"],
        service["metadata"]["name"]
    );

    let certificate = find(&certs, "Certificate");
    assert_eq!(certificate["spec"]["secretName"].as_str(), Some(secret));
    assert!(certificate["spec"]["dnsNames"]
        .as_sequence()
        .unwrap()
        .iter()
        .any(|n| n.as_str() == Some(dns.as_str())));
    let inject_from = format!(
        "{namespace}/{}",
        certificate["metadata"]["name"].as_str().unwrap()
    );
    assert_eq!(
        config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"].as_str(),
        Some(inject_from.as_str())
    );
    let issuer = find(&certs, "Issuer");
    assert_eq!(
        certificate["spec"]["issuerRef"]["name"],
        issuer["metadata"]["name"]
    );

    // No RBAC at all: the webhook reads nothing from the API server.
    for kind in ["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"] {
        assert!(
            webhook.iter().all(|doc| doc["kind"].as_str() != Some(kind)),
            "{kind}"
        );
    }
}
