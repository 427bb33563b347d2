//! The machine-identity logins end to end: the real binary against the fake Infisical, whose
//! login routes really verify what they get, and the fake cloud endpoints (an OIDC issuer, STS
//! checking SigV4, IMDSv2, the container endpoint, the GCE metadata server, Azure IMDS and AD).
//!
//! For each method: it logs in, lists and writes; it logs in again after a 401 or 403 mid-run
//! with freshly fetched credentials; a rotated token file is sent at the next login; a refusal
//! is exit 77 naming what to fix. No credential, token or value reaches stderr at trace level.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use common::{eventually, free_port, materializer, path_str, run, world_with, Finished, Running};
use fake_infisical::{sample, CloudRoute, FakeCloud, FakeInfisical, Fault, Route, World};
use serde_json::{json, Value};

const ID: &str = "5d1c2a3e-0000-4000-8000-00000000c10d";
const UNKNOWN_ID: &str = "5d1c2a3e-0000-4000-8000-0000000000ff";
const VALUE: &str = "cloud-served-value-7f3a9c";
const TTL: u64 = 600;
const MAX_TTL: u64 = 3600;
const NAMESPACE: &str = "payments";
const ACCOUNT: &str = "api";
const SUBJECT: &str = "system:serviceaccount:payments:api";
const AUDIENCE: &str = "infisical";

/// A fake cloud, a fake Infisical serving `API_KEY`, and scratch space.
struct Cloudy {
    cloud: FakeCloud,
    fake: FakeInfisical,
    dir: tempfile::TempDir,
}

impl Cloudy {
    /// Starts both fakes; `identities` adds the identities to the world, using the cloud.
    fn start(identities: impl FnOnce(&FakeCloud, World) -> World) -> Self {
        let cloud = FakeCloud::start();
        let world = identities(&cloud, world_with(&[("API_KEY", VALUE)]));
        Self {
            fake: FakeInfisical::start(world),
            cloud,
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn file(&self, name: &str, content: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).expect("write");
        path
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// `mode` with the method's flags, the sample project, env dev, trace logs, and `env`.
    fn command(&self, mode: &str, method: &str, extra: &[&str], env: &[(&str, &str)]) -> Command {
        self.command_as(ID, mode, method, extra, env)
    }

    /// [`Cloudy::command`] for another identity.
    fn command_as(
        &self,
        id: &str,
        mode: &str,
        method: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Command {
        let url = self.fake.url();
        let mut command = materializer();
        command.arg(mode).args([
            "--api-url",
            &url,
            "--auth-method",
            method,
            "--identity-id",
            id,
            "--project-id",
            sample::PROJECT_ID,
            "--env",
            "dev",
            "--log-level",
            "trace",
        ]);
        command.args(extra).envs(env.iter().copied());
        command
    }

    /// `init --out-dir OUT` with this method; asserts the secret was written.
    fn init_writes(&self, method: &str, extra: &[&str], env: &[(&str, &str)]) -> Finished {
        let out = self.out();
        let mut args = vec!["--out-dir", path_str(&out)];
        args.extend_from_slice(extra);
        let done = run(&mut self.command("init", method, &args, env));
        done.assert_code(0);
        assert_eq!(
            std::fs::read_to_string(out.join("API_KEY")).expect("API_KEY written"),
            VALUE
        );
        done
    }

    /// A sidecar refreshing every 200 ms, once it has written the secret.
    fn sidecar(&self, method: &str, extra: &[&str], env: &[(&str, &str)]) -> Running {
        let out = self.out();
        let mut args = vec![
            "--out-dir",
            path_str(&out),
            "--interval",
            "200ms",
            "--jitter",
            "0",
        ];
        args.extend_from_slice(extra);
        let running = Running::start(
            &mut self.command("sidecar", method, &args, env),
            self.dir.path().join("sidecar.log"),
        );
        let file = out.join("API_KEY");
        running.wait_for("the first write", || file.exists());
        running
    }

    /// Makes the sidecar's token invalid (the next list answers 401) and waits for a new login.
    fn force_relogin(&self, running: &Running) {
        let before = self.fake.logins();
        assert!(self.fake.revoke_tokens(ID) > 0, "a token to revoke");
        running.wait_for("a second login", || self.fake.logins() > before);
    }

    /// Bodies of the logins the fake received on `route`.
    fn login_bodies(&self, route: Route) -> Vec<Value> {
        self.fake
            .requests()
            .into_iter()
            .filter(|r| r.route == route && r.status == 200)
            .map(|r| serde_json::from_str(&r.body).expect("JSON login body"))
            .collect()
    }
}

/// Fails if any of `secrets` shows in the output.
#[track_caller]
fn assert_clean(output: &str, secrets: &[&str]) {
    for secret in secrets.iter().chain([&VALUE]) {
        assert!(
            !secret.is_empty() && !output.contains(secret),
            "the output shows a secret ({}…):\n{output}",
            &secret[..secret.len().min(12)]
        );
    }
}

/// A JWT from the cluster issuer, unique per call (`jti`), like a kubelet-projected token.
fn projected_token(cloud: &FakeCloud, audience: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    cloud.mint_jwt(json!({
        "iss": cloud.issuer(),
        "sub": SUBJECT,
        "aud": [audience],
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "jti": format!("{:x}", fastrand::u64(..)),
        "kubernetes.io": {"namespace": NAMESPACE, "serviceaccount": {"name": ACCOUNT}},
    }))
}

/// The access tokens the fake issued, read from its recorded login answers' requests: any
/// `Authorization: Bearer` header sent to it.
fn bearer_tokens(fake: &FakeInfisical) -> Vec<String> {
    fake.requests()
        .iter()
        .filter_map(|r| r.header("authorization"))
        .filter_map(|h| h.strip_prefix("Bearer "))
        .map(str::to_owned)
        .collect()
}

// ----- oidc and jwt -----

#[test]
fn oidc_logs_in_with_the_projected_token_and_sends_a_rotated_one_after_a_401() {
    let setup = Cloudy::start(|cloud, world| {
        world.oidc_identity(ID, cloud.oidc_auth(&[AUDIENCE], SUBJECT), TTL, MAX_TTL)
    });
    let first = projected_token(&setup.cloud, AUDIENCE);
    let token = setup.file("token", &first);
    let jwt_file = ["--jwt-file", path_str(&token)];
    let done = setup.init_writes("oidc", &jwt_file, &[]);
    assert_eq!(setup.fake.logins(), 1);
    assert_clean(&done.stderr, &[&first]);
    assert_clean(
        &done.stderr,
        &bearer_tokens(&setup.fake)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );

    let running = setup.sidecar("oidc", &jwt_file, &[]);
    let rotated = projected_token(&setup.cloud, AUDIENCE);
    std::fs::write(&token, &rotated).expect("rotate");
    setup.force_relogin(&running);
    let bodies = setup.login_bodies(Route::OidcLogin);
    assert_eq!(bodies.last().expect("logins")["jwt"], rotated.as_str());
    assert_eq!(bodies.last().expect("logins")["identityId"], ID);
    running.wait_for("secrets listed with the new token", || {
        running.logs().contains("logged in to Infisical")
    });
    assert_clean(&running.logs(), &[&first, &rotated]);
}

#[test]
fn oidc_refusals_name_the_claims_to_fix() {
    let setup = Cloudy::start(|cloud, world| {
        world
            .oidc_identity(
                ID,
                cloud.oidc_auth(&["another-audience"], SUBJECT),
                TTL,
                MAX_TTL,
            )
            .oidc_identity(
                "5d1c2a3e-0000-4000-8000-00000000000b",
                cloud.oidc_auth(&[AUDIENCE], "system:serviceaccount:other:app"),
                TTL,
                MAX_TTL,
            )
    });
    let jwt = projected_token(&setup.cloud, AUDIENCE);
    let token = setup.file("token", &jwt);
    let refused = |id: &str| {
        let mut command =
            setup.command_as(id, "check", "oidc", &["--jwt-file", path_str(&token)], &[]);
        let done = run(&mut command);
        done.assert_code(77);
        assert_clean(&done.stderr, &[&jwt]);
        done.error_line().to_owned()
    };
    let audience = refused(ID);
    assert!(audience.contains("OIDC audience not allowed"), "{audience}");
    assert!(audience.contains(r#"aud=["infisical"]"#), "{audience}");
    assert!(audience.contains("bound audiences"), "{audience}");
    let subject = refused("5d1c2a3e-0000-4000-8000-00000000000b");
    assert!(subject.contains(&format!("sub={SUBJECT:?}")), "{subject}");
    assert!(subject.contains("bound subject"), "{subject}");
    let unknown = refused(UNKNOWN_ID);
    assert!(unknown.contains("has no OIDC auth configured"), "{unknown}");
    // A token signed by a key the issuer does not publish.
    std::fs::write(
        &token,
        setup.cloud.mint_foreign_jwt(
            json!({"iss": setup.cloud.issuer(), "sub": SUBJECT, "aud": AUDIENCE}),
        ),
    )
    .expect("write");
    let signature = refused("5d1c2a3e-0000-4000-8000-00000000000b");
    assert!(signature.contains("signature"), "{signature}");
}

#[test]
fn oidc_on_a_server_that_cannot_read_a_list_audience_exits_77_at_once() {
    let setup = Cloudy::start(|cloud, world| {
        world
            .oidc_identity(ID, cloud.oidc_auth(&[AUDIENCE], SUBJECT), TTL, MAX_TTL)
            .oidc_rejects_list_audience(true)
    });
    let token = setup.file(
        "token",
        &setup
            .cloud
            .service_account_token(NAMESPACE, ACCOUNT, &[AUDIENCE]),
    );
    let done = run(&mut setup.command(
        "check",
        "oidc",
        &["--jwt-file", path_str(&token), "--retry-deadline", "60s"],
        &[],
    ));
    done.assert_code(77);
    let line = done.error_line();
    assert!(line.contains("cannot read a list-valued aud"), "{line}");
    assert!(line.contains("--auth-method kubernetes"), "{line}");
    assert_eq!(setup.fake.count(Route::OidcLogin), 1, "not retried");
}

#[test]
fn jwt_auth_logs_in_again_after_a_403_and_names_a_wrong_audience() {
    let setup = Cloudy::start(|cloud, world| {
        world
            .jwt_identity(ID, cloud.jwt_auth(&[AUDIENCE], SUBJECT), TTL, MAX_TTL)
            .jwt_identity(
                "5d1c2a3e-0000-4000-8000-00000000000c",
                cloud.jwt_auth(&["elsewhere"], SUBJECT),
                TTL,
                MAX_TTL,
            )
    });
    let jwt = projected_token(&setup.cloud, AUDIENCE);
    // By value, through INFISICAL_JWT.
    let env = [("INFISICAL_JWT", jwt.as_str())];
    setup.init_writes("jwt", &[], &env);
    let running = setup.sidecar("jwt", &[], &env);
    let before = setup.fake.logins();
    setup.fake.inject(Fault::token_expired(Route::ListSecrets));
    running.wait_for("a login after the 403", || setup.fake.logins() > before);
    assert_clean(&running.logs(), &[&jwt]);
    drop(running);

    let mut command = setup.command_as(
        "5d1c2a3e-0000-4000-8000-00000000000c",
        "check",
        "jwt",
        &[],
        &env,
    );
    let done = run(&mut command);
    done.assert_code(77);
    assert!(
        done.error_line().contains("token audience not allowed"),
        "{}",
        done.error_line()
    );
    assert!(
        done.error_line().contains("INFISICAL_JWT"),
        "{}",
        done.error_line()
    );
}

#[test]
fn exec_keeps_the_jwt_from_the_app_but_not_the_cloud_variables() {
    let setup = Cloudy::start(|cloud, world| {
        world.oidc_identity(ID, cloud.oidc_auth(&[AUDIENCE], SUBJECT), TTL, MAX_TTL)
    });
    let jwt = projected_token(&setup.cloud, AUDIENCE);
    let env = [("INFISICAL_JWT", jwt.as_str()), ("AWS_REGION", "eu-west-1")];
    let mut command = setup.command("exec", "oidc", &[], &env);
    command.args(["--", "env"]);
    let done = run(&mut command);
    done.assert_code(0);
    assert!(
        done.stdout.contains(&format!("API_KEY={VALUE}")),
        "{}",
        done.stdout
    );
    assert!(
        done.stdout.contains("AWS_REGION=eu-west-1"),
        "{}",
        done.stdout
    );
    assert!(!done.stdout.contains("INFISICAL_"), "{}", done.stdout);
}

// ----- aws-iam -----

const ACCOUNT_ARN: &str = "arn:aws:iam::111122223333:user/ci";
const ROLE_ARN: &str = "arn:aws:iam::111122223333:role/payments-api";
const ASSUMED_ARN: &str = "arn:aws:sts::111122223333:assumed-role/payments-api/pod";
const ACCESS_KEY: &str = "ASIAFAKE0000000000001";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+fakeSECRETkey0001";
const SESSION: &str = "IQoJb3JpZ2luX2VjEFakeSessionToken0001";

fn aws_world(cloud: &FakeCloud, world: World) -> World {
    world.aws_identity(
        ID,
        cloud.aws_auth(&[ACCOUNT_ARN, ROLE_ARN, "arn:aws:iam::111122223333:role/node"]),
        TTL,
        MAX_TTL,
    )
}

/// The headers object of the last AWS login, decoded.
fn last_aws_headers(setup: &Cloudy) -> serde_json::Map<String, Value> {
    let body = setup
        .login_bodies(Route::AwsLogin)
        .pop()
        .expect("an AWS login");
    assert_eq!(body["iamHttpRequestMethod"], "POST");
    assert_eq!(
        STANDARD
            .decode(body["iamRequestBody"].as_str().expect("body"))
            .expect("base64"),
        b"Action=GetCallerIdentity&Version=2011-06-15"
    );
    let headers = STANDARD
        .decode(body["iamRequestHeaders"].as_str().expect("headers"))
        .expect("base64");
    match serde_json::from_slice(&headers).expect("JSON headers") {
        Value::Object(map) => map,
        other => panic!("headers are not an object: {other}"),
    }
}

#[test]
fn aws_keys_from_the_environment_sign_the_session_token_in() {
    let setup = Cloudy::start(aws_world);
    setup
        .cloud
        .aws_temporary_key(ACCESS_KEY, SECRET_KEY, SESSION, ACCOUNT_ARN);
    let env = [
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ("AWS_SESSION_TOKEN", SESSION),
        ("AWS_REGION", "eu-west-1"),
    ];
    let done = setup.init_writes("aws-iam", &[], &env);
    assert_eq!(setup.cloud.count(CloudRoute::StsGetCallerIdentity), 1);
    let headers = last_aws_headers(&setup);
    assert_eq!(headers["Host"], "sts.eu-west-1.amazonaws.com");
    assert_eq!(headers["X-Amz-Security-Token"], SESSION);
    let authorization = headers["Authorization"].as_str().expect("Authorization");
    assert!(
        authorization.contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token"),
        "{authorization}"
    );
    assert_clean(&done.stderr, &[SECRET_KEY, SESSION, authorization]);

    // The fake STS rejects the same signed request once a signed header is tampered with.
    let mut tampered: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect();
    for (name, value) in &mut tampered {
        if name == "X-Amz-Date" {
            value.replace_range(..4, "2014");
        }
    }
    let (status, body) = post_raw(
        &setup.cloud.sts_url(),
        &tampered,
        "Action=GetCallerIdentity&Version=2011-06-15",
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("SignatureDoesNotMatch"), "{body}");
}

/// POSTs a form body with exactly these headers (Host included) to `url`.
fn post_raw(url: &str, headers: &[(String, String)], body: &str) -> (u16, String) {
    let address = url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(address).expect("connect");
    let mut request = "POST / HTTP/1.1\r\nconnection: close\r\n".to_owned();
    for (name, value) in headers {
        if !name.eq_ignore_ascii_case("content-length") {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    request.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

#[test]
fn aws_with_a_wrong_secret_key_is_told_by_sts_not_retried_as_an_outage() {
    let setup = Cloudy::start(aws_world);
    setup.cloud.aws_user(
        "AKIAFAKE000000000002",
        "the-right-secret-key-0002",
        ACCOUNT_ARN,
    );
    let env = [
        ("AWS_ACCESS_KEY_ID", "AKIAFAKE000000000002"),
        ("AWS_SECRET_ACCESS_KEY", "a-wrong-secret-key-000002"),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ENDPOINT_URL_STS", &setup.cloud.sts_url()),
    ];
    let done = run(&mut setup.command("check", "aws-iam", &["--retry-deadline", "60s"], &env));
    done.assert_code(77);
    let line = done.error_line();
    assert!(line.contains("SignatureDoesNotMatch"), "{line}");
    assert!(
        line.contains("does not belong to the access key id"),
        "{line}"
    );
    assert!(line.contains("AKIAFAKE000000000002"), "{line}");
    assert_clean(
        &done.stderr,
        &["a-wrong-secret-key-000002", "the-right-secret-key-0002"],
    );
    assert_eq!(setup.fake.count(Route::AwsLogin), 1, "not retried");
}

#[test]
fn aws_clock_skew_reported_by_sts_is_named() {
    let setup = Cloudy::start(aws_world);
    setup
        .cloud
        .aws_user("AKIAFAKE000000000003", "secret-key-0003", ACCOUNT_ARN);
    let expired = "<ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code>\
        <Message>Signature expired: 20261201T000000Z is now earlier than 20261201T001000Z</Message></Error></ErrorResponse>";
    // Once for Infisical's forwarded request, once for the tool's own question.
    setup
        .cloud
        .inject(CloudRoute::StsGetCallerIdentity, 403, expired, 2);
    let env = [
        ("AWS_ACCESS_KEY_ID", "AKIAFAKE000000000003"),
        ("AWS_SECRET_ACCESS_KEY", "secret-key-0003"),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ENDPOINT_URL_STS", &setup.cloud.sts_url()),
    ];
    let done = run(&mut setup.command("check", "aws-iam", &[], &env));
    done.assert_code(77);
    assert!(
        done.error_line()
            .contains("clock is more than 5 minutes off"),
        "{}",
        done.error_line()
    );
}

#[test]
fn aws_web_identity_is_exchanged_afresh_and_a_rotated_token_is_sent() {
    let setup = Cloudy::start(aws_world);
    setup.cloud.aws_web_identity_role(ROLE_ARN, ASSUMED_ARN);
    let first = projected_token(&setup.cloud, "sts.amazonaws.com");
    let token = setup.file("aws-token", &first);
    let sts = setup.cloud.sts_url();
    let env = [
        ("AWS_ROLE_ARN", ROLE_ARN),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", path_str(&token)),
        ("AWS_ENDPOINT_URL_STS", &sts),
        ("AWS_REGION", "us-west-2"),
    ];
    let running = setup.sidecar("aws-iam", &[], &env);
    assert_eq!(
        setup.cloud.count(CloudRoute::StsAssumeRoleWithWebIdentity),
        1
    );
    let rotated = projected_token(&setup.cloud, "sts.amazonaws.com");
    std::fs::write(&token, &rotated).expect("rotate");
    setup.force_relogin(&running);
    let assumes: Vec<String> = setup
        .cloud
        .requests()
        .into_iter()
        .filter(|r| r.route == CloudRoute::StsAssumeRoleWithWebIdentity)
        .map(|r| r.body)
        .collect();
    assert_eq!(assumes.len(), 2, "one exchange per login");
    assert!(assumes[1].contains(&rotated), "the rotated token is sent");
    let keys: Vec<String> = setup
        .login_bodies(Route::AwsLogin)
        .iter()
        .map(|b| {
            b["iamRequestHeaders"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(keys.len(), 2);
    assert_ne!(keys[0], keys[1], "fresh temporary credentials");
    assert_clean(&running.logs(), &[&first, &rotated]);
}

#[test]
fn aws_container_credentials_use_the_authorization_token_file() {
    let setup = Cloudy::start(aws_world);
    setup.cloud.aws_container_credentials(
        "pod-identity-token-0004",
        ROLE_ARN.replace("payments-api", "node").as_str(),
    );
    let token = setup.file("eks-token", "pod-identity-token-0004\n");
    let uri = format!("{}/aws/container-credentials", setup.cloud.url());
    let env = [
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri.as_str()),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", path_str(&token)),
        ("AWS_REGION", "eu-west-1"),
    ];
    let done = setup.init_writes("aws-iam", &[], &env);
    assert_eq!(setup.cloud.count(CloudRoute::ContainerCredentials), 1);
    assert_clean(&done.stderr, &["pod-identity-token-0004"]);
}

#[test]
fn aws_instance_metadata_v2_gives_region_and_credentials_afresh() {
    let setup = Cloudy::start(aws_world);
    setup
        .cloud
        .aws_instance_role("node", "arn:aws:iam::111122223333:role/node", "ap-south-1");
    let imds = setup.cloud.url();
    let env = [("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.as_str())];
    let running = setup.sidecar("aws-iam", &[], &env);
    assert_eq!(
        last_aws_headers(&setup)["Host"],
        "sts.ap-south-1.amazonaws.com"
    );
    assert!(
        setup.cloud.count(CloudRoute::ImdsToken) >= 1,
        "an IMDSv2 session token"
    );
    let credentials = setup.cloud.count(CloudRoute::ImdsCredentials);
    setup.force_relogin(&running);
    assert!(
        eventually(10, || setup.cloud.count(CloudRoute::ImdsCredentials)
            > credentials),
        "credentials fetched again for the new login"
    );
    // Every metadata GET carried the session token.
    for request in setup.cloud.requests() {
        if matches!(
            request.route,
            CloudRoute::ImdsCredentials | CloudRoute::ImdsRegion
        ) {
            assert!(
                request.header("x-aws-ec2-metadata-token").is_some(),
                "{}",
                request.path
            );
        }
    }
}

#[test]
fn aws_refusals_and_missing_credentials_say_what_to_fix() {
    let setup = Cloudy::start(aws_world);
    setup.cloud.aws_user(
        "AKIAFAKE000000000005",
        "secret-key-0005",
        "arn:aws:iam::999999999999:user/intruder",
    );
    let env = [
        ("AWS_ACCESS_KEY_ID", "AKIAFAKE000000000005"),
        ("AWS_SECRET_ACCESS_KEY", "secret-key-0005"),
        ("AWS_REGION", "eu-west-1"),
    ];
    let done = run(&mut setup.command("check", "aws-iam", &[], &env));
    done.assert_code(77);
    assert!(
        done.error_line().contains("Allowed Principal ARNs"),
        "{}",
        done.error_line()
    );

    // Nothing configured and no instance metadata: retried until the deadline, then 69.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let done = run(&mut setup.command(
        "check",
        "aws-iam",
        &["--retry-deadline", "1s"],
        &[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &closed)],
    ));
    done.assert_code(69);
    let line = done.error_line();
    assert!(line.contains("no AWS credentials found"), "{line}");
    assert!(line.contains("AWS_WEB_IDENTITY_TOKEN_FILE"), "{line}");
    assert!(line.contains(&closed), "{line}");
    // With the instance metadata disabled there is nothing to wait for: 64 at once.
    let done = run(&mut setup.command(
        "check",
        "aws-iam",
        &[],
        &[("AWS_EC2_METADATA_DISABLED", "true")],
    ));
    done.assert_code(64);
    assert!(
        done.error_line().contains("AWS_EC2_METADATA_DISABLED"),
        "{}",
        done.error_line()
    );
}

// ----- gcp -----

const GCP_EMAIL: &str = "payments-api@payments-prod.iam.gserviceaccount.com";

#[test]
fn gcp_id_token_comes_fresh_from_the_metadata_server_after_a_403() {
    let setup = Cloudy::start(|cloud, world| {
        world.gcp_identity(ID, cloud.gcp_id_token_auth(&[GCP_EMAIL]), TTL, MAX_TTL)
    });
    setup.cloud.gce_service_account(GCP_EMAIL);
    let host = setup.cloud.host_port();
    let env = [("GCE_METADATA_HOST", host.as_str())];
    let running = setup.sidecar("gcp-id-token", &[], &env);
    let identity = setup
        .cloud
        .requests()
        .into_iter()
        .find(|r| r.route == CloudRoute::GceIdentity)
        .expect("an identity request");
    assert_eq!(identity.query("audience"), Some(ID));
    assert_eq!(identity.query("format"), Some("full"));
    let before = setup.fake.logins();
    setup.fake.inject(Fault::token_expired(Route::ListSecrets));
    running.wait_for("a login after the 403", || setup.fake.logins() > before);
    assert_eq!(setup.cloud.count(CloudRoute::GceIdentity), 2);
    let tokens: Vec<String> = setup
        .login_bodies(Route::GcpLogin)
        .iter()
        .map(|b| b["jwt"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_clean(
        &running.logs(),
        &tokens.iter().map(String::as_str).collect::<Vec<_>>(),
    );
}

#[test]
fn gcp_metadata_server_unreachable_says_to_use_another_method() {
    let setup = Cloudy::start(|cloud, world| {
        world.gcp_identity(ID, cloud.gcp_id_token_auth(&[GCP_EMAIL]), TTL, MAX_TTL)
    });
    let closed = format!("127.0.0.1:{}", free_port());
    let done = run(&mut setup.command(
        "check",
        "gcp-id-token",
        &["--retry-deadline", "1s"],
        &[("GCE_METADATA_HOST", &closed)],
    ));
    done.assert_code(69);
    assert!(
        done.error_line().contains("not running on GCE or GKE?"),
        "{}",
        done.error_line()
    );
}

#[test]
fn gcp_iam_signs_with_the_key_file_and_uses_a_rotated_key() {
    let setup = Cloudy::start(|cloud, world| {
        world
            .gcp_identity(ID, cloud.gcp_iam_auth(&[GCP_EMAIL]), TTL, MAX_TTL)
            .gcp_identity(
                UNKNOWN_ID,
                cloud.gcp_iam_auth(&["other@payments-prod.iam.gserviceaccount.com"]),
                TTL,
                MAX_TTL,
            )
    });
    let key = setup.file("key.json", &setup.cloud.gcp_service_account_key(GCP_EMAIL));
    let flags = ["--gcp-service-account-key-file", path_str(&key)];
    let private_key: Value =
        serde_json::from_str(&std::fs::read_to_string(&key).expect("key")).expect("JSON");
    let pem = private_key["private_key"].as_str().expect("pem").to_owned();
    let running = setup.sidecar("gcp-iam", &flags, &[]);
    std::fs::write(&key, setup.cloud.gcp_service_account_key(GCP_EMAIL)).expect("rotate");
    setup.force_relogin(&running);
    let kids: Vec<String> = setup
        .login_bodies(Route::GcpLogin)
        .iter()
        .map(|body| {
            let jwt = body["jwt"].as_str().expect("jwt");
            let header = URL_SAFE_NO_PAD
                .decode(jwt.split('.').next().expect("header"))
                .expect("base64url");
            let header: Value = serde_json::from_slice(&header).expect("JSON");
            header["kid"].as_str().expect("kid").to_owned()
        })
        .collect();
    assert_eq!(kids.len(), 2);
    assert_ne!(kids[0], kids[1], "the rotated key file is used");
    let pem_body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    assert_clean(&running.logs(), &[&pem_body[..40]]);
    drop(running);

    let mut command = setup.command_as(UNKNOWN_ID, "check", "gcp-iam", &flags, &[]);
    let done = run(&mut command);
    done.assert_code(77);
    assert!(
        done.error_line().contains("not allowed"),
        "{}",
        done.error_line()
    );
}

// ----- azure -----

const OBJECT_ID: &str = "8f0d9c2b-1111-4222-8333-944455556666";
const MANAGEMENT: &str = "https://management.azure.com/";

#[test]
fn azure_managed_identity_through_imds() {
    let setup = Cloudy::start(|cloud, world| {
        world.azure_identity(ID, cloud.azure_auth(MANAGEMENT, &[OBJECT_ID]), TTL, MAX_TTL)
    });
    setup.cloud.azure_managed_identity(None, OBJECT_ID);
    let imds = format!("{}/metadata/identity/oauth2/token", setup.cloud.url());
    let env = [("INFISICAL_AZURE_IMDS_ENDPOINT", imds.as_str())];
    let done = setup.init_writes("azure", &[], &env);
    assert_eq!(setup.cloud.count(CloudRoute::AzureImds), 1);
    let token = setup.login_bodies(Route::AzureLogin).pop().expect("login")["jwt"]
        .as_str()
        .expect("jwt")
        .to_owned();
    assert_clean(&done.stderr, &[&token]);

    // A resource the identity does not expect is refused, naming the fix.
    let done = run(&mut setup.command(
        "check",
        "azure",
        &["--azure-resource", "https://vault.azure.net/"],
        &env,
    ));
    done.assert_code(77);
    assert!(
        done.error_line().contains("--azure-resource"),
        "{}",
        done.error_line()
    );
}

#[test]
fn azure_workload_identity_exchanges_a_rotated_federated_token() {
    let setup = Cloudy::start(|cloud, world| {
        world.azure_identity(ID, cloud.azure_auth(MANAGEMENT, &[OBJECT_ID]), TTL, MAX_TTL)
    });
    let client = "0b1c2d3e-aaaa-4bbb-8ccc-0d0e0f101112";
    setup.cloud.azure_workload_identity(client, OBJECT_ID);
    let first = projected_token(&setup.cloud, "api://AzureADTokenExchange");
    let token = setup.file("azure-token", &first);
    let tenant = setup.cloud.azure_tenant();
    let authority = setup.cloud.url();
    let env = [
        ("AZURE_CLIENT_ID", client),
        ("AZURE_TENANT_ID", tenant.as_str()),
        ("AZURE_FEDERATED_TOKEN_FILE", path_str(&token)),
        ("AZURE_AUTHORITY_HOST", authority.as_str()),
    ];
    let running = setup.sidecar("azure", &[], &env);
    let rotated = projected_token(&setup.cloud, "api://AzureADTokenExchange");
    std::fs::write(&token, &rotated).expect("rotate");
    setup.force_relogin(&running);
    let exchanges: Vec<String> = setup
        .cloud
        .requests()
        .into_iter()
        .filter(|r| r.route == CloudRoute::AzureToken)
        .map(|r| r.body)
        .collect();
    assert_eq!(exchanges.len(), 2);
    assert!(
        exchanges[1].contains(&rotated),
        "the rotated federated token is sent"
    );
    assert_clean(&running.logs(), &[&first, &rotated]);
}
