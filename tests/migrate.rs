//! `migrate eso` and `migrate infisical-agent` end to end: realistic inputs convert, the
//! converted configuration run with `init` against the fake (holding the same secrets) writes
//! the files and keys the original would have produced, the manifests pass
//! `kubernetes-validate --strict`, and every refusal exits 65 naming the field.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{materializer, path_str, run, Finished, Setup};
use fake_infisical::{prerequisite, sample};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/migrate")
        .join(name)
}

fn migrate(args: &[&str]) -> Finished {
    run(materializer().arg("migrate").args(args))
}

/// The fake with the secrets the fixtures read (prod), and decoys they must not select.
fn setup() -> Setup {
    Setup::with_world(common::world_of(&[
        ("prod", "/backend", "DB_USER", "orders"),
        ("prod", "/backend", "DB_PASSWORD", "s3cr3t"),
        ("prod", "/backend", "API_TOKEN", "tok-1"),
        ("prod", "/backend/replica", "DB_HOST_REPLICA", "db-2"),
        ("prod", "/payments", "STRIPE_SECRET", "sk_live_1"),
        ("prod", "/payments", "STRIPE_OTHER", "decoy"),
        ("dev", "/backend", "DB_USER", "decoy"),
    ]))
}

/// Converts into `out`, then runs `init` on the converted config with the pod's paths moved
/// into the scratch dir and the fake's address and credentials given as flags.
fn convert_and_init(setup: &Setup, sub: &str, file: &Path) -> PathBuf {
    let out = setup.path("converted");
    migrate(&[sub, "--out", path_str(&out), path_str(file)]).assert_code(0);
    let root = setup.path("pod");
    let text = std::fs::read_to_string(out.join("config.yaml")).expect("config.yaml");
    let text: String = text
        .replace("/run/secrets/", &format!("{}/run/secrets/", root.display()))
        .replace("/shared/", &format!("{}/shared/", root.display()))
        .lines()
        .filter(|line| !line.starts_with("ca-cert:") && !line.starts_with("on-change-"))
        .map(|line| format!("{line}\n"))
        .collect();
    let config = setup.file("pod-config.yaml", &text);
    let secret = setup.file("client-secret", sample::UA_CLIENT_SECRET);
    let id = setup.file("client-id", sample::UA_CLIENT_ID);
    run(materializer().args([
        "init",
        "--config",
        path_str(&config),
        "--api-url",
        &setup.fake.url(),
        "--client-id-file",
        path_str(&id),
        "--client-secret-file",
        path_str(&secret),
    ]))
    .assert_code(0);
    root
}

fn files(dir: &Path) -> Vec<(String, String)> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with(".."))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let value = std::fs::read_to_string(dir.join(&name)).expect("read");
            (name, value)
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn eso_universal_auth_with_renames_and_a_pattern_writes_the_secrets_data() {
    let setup = setup();
    let root = convert_and_init(&setup, "eso", &fixture("eso-universal-auth.yaml"));
    // What ESO's Secret orders-api held: dataFrom (recursive, ^DB_) and the renamed data keys.
    assert_eq!(
        files(&root.join("run/secrets/orders-api")),
        pairs(&[
            ("APP_TOKEN", "tok-1"),
            ("DB_HOST_REPLICA", "db-2"),
            ("DB_PASSWORD", "s3cr3t"),
            ("DB_USER", "orders"),
            ("STRIPE_KEY", "sk_live_1"),
        ])
    );
}

#[test]
fn eso_universal_auth_reports_namespaces_and_hostapi_and_maps_the_pod() {
    let done = migrate(&["eso", path_str(&fixture("eso-universal-auth.yaml"))]);
    done.assert_code(0);
    for needle in [
        "spec.provider.infisical.hostAPI: \"https://infisical.example.com\" lacks /api",
        "universalAuthCredentials.clientId: external-secrets/universal-auth-credentials is in another namespace than the pod (orders)",
        "caProvider: external-secrets/infisical-ca is in another namespace",
    ] {
        assert!(done.stderr.contains(needle), "{needle}\n{}", done.stderr);
    }
    for needle in [
        "api-url: \"https://infisical.example.com\"",
        "ca-cert: /var/run/infisical-ca/ca.crt",
        "client-secret-file: /var/run/infisical/client-secret",
        "interval: \"15m\"",
        "keys-matching: \"^DB_\"",
        "recursive: true",
        "restartPolicy: Always",
        "secretName: infisical-ca",
        "name: universal-auth-credentials",
    ] {
        assert!(done.stdout.contains(needle), "{needle}\n{}", done.stdout);
    }
    kubernetes_validate(&done.stdout);
}

#[test]
fn eso_template_renders_the_config_file_the_secret_held() {
    let setup = setup();
    let root = convert_and_init(&setup, "eso", &fixture("eso-template.yaml"));
    assert_eq!(
        files(&root.join("run/secrets/billing")),
        pairs(&[(
            "config.yaml",
            "database:\n  user: orders\n  password: s3cr3t\n  password_b64: czNjcjN0\n"
        )])
    );
    let done = migrate(&["eso", path_str(&fixture("eso-template.yaml"))]);
    done.assert_code(0);
    // refreshInterval 0: an init container, no sidecar.
    assert!(done.stdout.contains("- init\n"), "{}", done.stdout);
    assert!(!done.stdout.contains("restartPolicy"), "{}", done.stdout);
    assert!(
        done.stderr
            .contains("template.type: the Secret was of type Opaque"),
        "{}",
        done.stderr
    );
    kubernetes_validate(&done.stdout);
}

#[test]
fn agent_with_two_templates_and_a_command_renders_the_same_files() {
    let setup = setup();
    let root = convert_and_init(&setup, "infisical-agent", &fixture("agent-config.yaml"));
    assert_eq!(
        files(&root.join("shared/infisical-secrets")),
        pairs(&[
            (
                "app.env",
                "\nAPI_TOKEN=tok-1\nDB_PASSWORD=s3cr3t\nDB_USER=orders\n"
            ),
            ("db.yaml", "\npassword: s3cr3t\ntoken: dG9rLTE=\n"),
        ])
    );
    let done = migrate(&["infisical-agent", path_str(&fixture("agent-config.yaml"))]);
    done.assert_code(0);
    for needle in [
        "on-change-exec: /usr/local/bin/reload-app",
        "on-change-timeout: \"30s\"",
        "interval: \"60s\"",
        "project-id: cb7fcb73-a6e6-490e-ae23-bc4878a67111",
    ] {
        assert!(done.stdout.contains(needle), "{needle}\n{}", done.stdout);
    }
    kubernetes_validate(&done.stdout);
}

/// Runs `kubernetes-validate --strict` on the YAML stream (1.30 and 1.37, as CI does).
fn kubernetes_validate(stream: &str) {
    let available = Command::new("python3")
        .args(["-c", "import kubernetes_validate"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        return prerequisite::missing(
            "kubernetes-validate (pip install kubernetes-validate==1.37.0)",
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("stream.yaml");
    std::fs::write(&file, stream).expect("write");
    for version in ["1.30.0", "1.37.0"] {
        let output = Command::new("python3")
            .args([
                "-m",
                "kubernetes_validate",
                "--strict",
                "--quiet",
                "-k",
                version,
            ])
            .arg(&file)
            .output()
            .expect("python3 runs");
        assert!(
            output.status.success(),
            "kubernetes-validate {version}:\n{}{}\n{stream}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

const STORE: &str = "apiVersion: external-secrets.io/v1
kind: ClusterSecretStore
metadata: {name: infisical}
spec:
  provider:
    infisical:
      hostAPI: https://infisical.example.com/api
      auth:
        universalAuthCredentials:
          clientId: {name: ua, key: clientId}
          clientSecret: {name: ua, key: clientSecret}
      secretsScope: {projectSlug: orders, environmentSlug: prod}
---
";

fn external_secret(spec: &str) -> String {
    format!(
        "{STORE}apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {{name: app, namespace: default}}\nspec:\n  secretStoreRef: {{kind: ClusterSecretStore, name: infisical}}\n{spec}"
    )
}

#[test]
fn every_refusal_exits_65_naming_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            "  dataFrom:\n    - extract: {key: CONFIG_JSON}\n",
            "spec.dataFrom[0].extract: expanding a JSON-valued secret",
        ),
        (
            "  data:\n    - secretKey: a\n      remoteRef: {key: A, property: user}\n",
            "spec.data[0].remoteRef.property",
        ),
        (
            "  dataFrom:\n    - find: {name: {regexp: \"^DB_\"}}\n      rewrite:\n        - regexp: {source: \"DB_(.*)\", target: \"DATABASE_$1\"}\n",
            "spec.dataFrom[0].rewrite[0]: only a prefix can be expressed",
        ),
        (
            "  dataFrom:\n    - find: {tags: {team: a}}\n",
            "spec.dataFrom[0].find.tags",
        ),
        (
            "  dataFrom:\n    - find: {path: /other}\n",
            "spec.dataFrom[0].find.path: selects nothing in ESO",
        ),
        (
            "  dataFrom:\n    - sourceRef: {generatorRef: {kind: Password, name: p}}\n",
            "spec.dataFrom[0].sourceRef",
        ),
        (
            "  target:\n    template:\n      data:\n        a: |\n          x\n          {{ .user | quote }}\n  data:\n    - {secretKey: user, remoteRef: {key: U}}\n",
            "spec.target.template.data.a: `{{ .user | quote }}`",
        ),
        (
            "  target:\n    template:\n      templateFrom: [{configMap: {name: t}}]\n  data:\n    - {secretKey: user, remoteRef: {key: U}}\n",
            "spec.target.template.templateFrom",
        ),
        (
            "  target:\n    template:\n      mergePolicy: Merge\n      data: {a: x}\n  data:\n    - {secretKey: user, remoteRef: {key: U}}\n",
            "spec.target.template.mergePolicy",
        ),
        (
            "  refreshInterval: soon\n  data:\n    - {secretKey: user, remoteRef: {key: U}}\n",
            "spec.refreshInterval",
        ),
        (
            "  data:\n    - {secretKey: user, remoteRef: {key: U, decodingStrategy: Auto}}\n",
            "spec.data[0].remoteRef.decodingStrategy",
        ),
        (
            "  deletionGracePeriod: 1h\n  data:\n    - {secretKey: user, remoteRef: {key: U}}\n",
            "spec.deletionGracePeriod: not converted",
        ),
        ("  data: []\n", "neither data nor dataFrom"),
    ];
    for (index, (spec, needle)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("case-{index}.yaml"));
        std::fs::write(&file, external_secret(spec)).expect("write");
        let done = migrate(&["eso", path_str(&file)]);
        done.assert_code(65);
        assert!(done.stderr.contains(needle), "{needle}\n{}", done.stderr);
        assert!(done.stdout.is_empty(), "{}", done.stdout);
    }
    // The template refusal names the file's line of the construct, and the construct.
    let file = dir.path().join("case-6.yaml");
    let done = migrate(&["eso", path_str(&file)]);
    assert!(
        done.stderr.contains(&format!(
            "{}:24: ExternalSecret default/app spec.target.template.data.a: `{{{{ .user | quote }}}}`: quote: not translated",
            file.display()
        )),
        "{}",
        done.stderr
    );
}

#[test]
fn auth_blocks_map_to_our_methods_or_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let with_auth = |auth: &str| {
        STORE.replace(
            "        universalAuthCredentials:\n          clientId: {name: ua, key: clientId}\n          clientSecret: {name: ua, key: clientSecret}\n",
            auth,
        ) + "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {name: app}\nspec:\n  secretStoreRef: {kind: ClusterSecretStore, name: infisical}\n  data:\n    - {secretKey: a, remoteRef: {key: A}}\n"
    };
    for (auth, expected) in [
        ("        kubernetesAuthCredentials:\n          identityId: {name: id, key: identityId}\n", "auth-method: kubernetes"),
        ("        awsAuthCredentials:\n          identityId: {name: id, key: identityId}\n", "auth-method: aws-iam"),
        ("        azureAuthCredentials:\n          identityId: {name: id, key: identityId}\n", "auth-method: azure"),
        ("        gcpIdTokenAuthCredentials:\n          identityId: {name: id, key: identityId}\n", "auth-method: gcp-id-token"),
        ("        jwtAuthCredentials:\n          identityId: {name: id, key: identityId}\n          jwt: {name: j, key: jwt}\n", "jwt-file: /var/run/infisical/jwt"),
        ("        tokenAuthCredentials:\n          accessToken: {name: t, key: token}\n", "token-file: /var/run/infisical/token"),
    ] {
        let file = dir.path().join("auth.yaml");
        std::fs::write(&file, with_auth(auth)).expect("write");
        let done = migrate(&["eso", path_str(&file)]);
        done.assert_code(0);
        assert!(done.stdout.contains(expected), "{expected}\n{}", done.stdout);
        if expected.starts_with("auth-method") {
            assert!(done.stdout.contains("name: INFISICAL_MACHINE_IDENTITY_ID"), "{}", done.stdout);
        }
    }
    for (auth, field) in [
        ("        ldapAuthCredentials:\n          identityId: {name: id, key: identityId}\n", "auth.ldapAuthCredentials: infisical-materializer has no such login"),
        ("        gcpIamAuthCredentials:\n          identityId: {name: id, key: identityId}\n          serviceAccountKeyFilePath: {name: k, key: path}\n", "serviceAccountKeyFilePath"),
    ] {
        let file = dir.path().join("auth.yaml");
        std::fs::write(&file, with_auth(auth)).expect("write");
        let done = migrate(&["eso", path_str(&file)]);
        done.assert_code(65);
        assert!(done.stderr.contains(field), "{field}\n{}", done.stderr);
    }
}

#[test]
fn slug_environment_and_hostapi_mistakes_are_reported_offline_with_their_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("mistakes.yaml");
    let text = external_secret("  data:\n    - {secretKey: a, remoteRef: {key: A}}\n")
        .replace("projectSlug: orders", "projectSlug: Orders API")
        .replace("environmentSlug: prod", "environmentSlug: Development")
        .replace(
            "https://infisical.example.com/api",
            "http://infisical.example.com/api/v3",
        );
    std::fs::write(&file, text).expect("write");
    let done = migrate(&["eso", path_str(&file)]);
    done.assert_code(0);
    for needle in [
        "\"Orders API\" looks like the project's display name, not its slug; fix: copy the slug from Project Settings",
        "\"Development\" looks like the environment's name, not its slug (Infisical's are dev, staging and prod unless renamed); fix: environmentSlug: dev",
        "names an API version; fix: hostAPI: http://infisical.example.com/api",
        "plain http sends the credentials unencrypted; fix: use https",
    ] {
        assert!(done.stderr.contains(needle), "{needle}\n{}", done.stderr);
    }
    assert!(
        done.stdout
            .contains("api-url: \"http://infisical.example.com\""),
        "{}",
        done.stdout
    );
    let file = dir.path().join("no-scheme.yaml");
    std::fs::write(
        &file,
        external_secret("  data:\n    - {secretKey: a, remoteRef: {key: A}}\n")
            .replace("https://", ""),
    )
    .expect("write");
    let done = migrate(&["eso", path_str(&file)]);
    done.assert_code(65);
    assert!(done.stderr.contains("hostAPI: \"infisical.example.com/api\" has no scheme; write https://infisical.example.com/api"), "{}", done.stderr);
}

#[test]
fn best_effort_converts_the_rest_and_lists_what_it_left_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("partial.yaml");
    std::fs::write(
        &file,
        external_secret("  data:\n    - {secretKey: a, remoteRef: {key: A}}\n    - {secretKey: b, remoteRef: {key: B, property: x}}\n"),
    )
    .expect("write");
    let out = dir.path().join("out");
    let done = migrate(&[
        "eso",
        "--best-effort",
        "--out",
        path_str(&out),
        path_str(&file),
    ]);
    done.assert_code(0);
    assert!(done.stderr.contains("left out: "), "{}", done.stderr);
    let left = std::fs::read_to_string(out.join("LEFT-OUT.txt")).expect("LEFT-OUT.txt");
    assert!(left.contains("spec.data[1].remoteRef.property"), "{left}");
    let config = std::fs::read_to_string(out.join("config.yaml")).expect("config.yaml");
    assert!(config.contains("A: a"), "{config}");
    assert!(out.join("pod-patch.yaml").exists() && out.join("configmap.yaml").exists());
}

#[test]
fn agent_refusals_name_the_file_line_and_construct() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("agent.yaml");
    std::fs::write(
        &file,
        "auth:\n  type: ldap-auth\n  config: {identity-id: ./id}\nsinks:\n  - type: file\n    config: {path: /tmp/token}\ntemplates:\n  - template-content: |\n      a\n      {{ range $i, $s := listSecrets \"p\" \"dev\" \"/\" }}{{ end }}\n    destination-path: /shared/a\n",
    )
    .expect("write");
    let done = migrate(&["infisical-agent", path_str(&file)]);
    done.assert_code(65);
    let name = file.display();
    for needle in [
        format!("{name}:2: agent configuration auth.type: \"ldap-auth\": infisical-materializer has no such login"),
        format!("{name}:5: agent configuration sinks[0]: infisical-materializer never writes its access token to a file (/tmp/token)"),
        format!("{name}:10: agent configuration templates[0]: `{{{{ range $i, $s := listSecrets \"p\" \"dev\" \"/\" }}}}`"),
    ] {
        assert!(done.stderr.contains(&needle), "{needle}\n{}", done.stderr);
    }
}

#[test]
fn check_logs_in_and_lists_the_key_names() {
    let setup = setup();
    let file = setup.file(
        "store.yaml",
        &std::fs::read_to_string(fixture("eso-template.yaml"))
            .expect("fixture")
            .replace("https://app.infisical.com/api", &setup.fake.url()),
    );
    let secret = setup.file("client-secret", sample::UA_CLIENT_SECRET);
    let id = setup.file("client-id", sample::UA_CLIENT_ID);
    let done = migrate(&[
        "eso",
        "--check",
        "--client-id-file",
        path_str(&id),
        "--client-secret-file",
        path_str(&secret),
        path_str(&file),
    ]);
    done.assert_code(0);
    assert!(
        done.stderr.contains("logged in; 2 key(s): password, user"),
        "{}",
        done.stderr
    );
    let wrong = setup.file("wrong-secret", "nope");
    let done = migrate(&[
        "eso",
        "--check",
        "--client-id-file",
        path_str(&id),
        "--client-secret-file",
        path_str(&wrong),
        path_str(&file),
    ]);
    done.assert_code(77);
    assert!(
        done.stderr
            .contains("check that the client secret belongs to this client id"),
        "{}",
        done.stderr
    );
}
