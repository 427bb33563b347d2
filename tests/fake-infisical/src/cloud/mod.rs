//! Loopback fakes of the cloud endpoints a pod gets credentials from (the Kubernetes OIDC
//! issuer, AWS STS / IMDSv2 / container credentials, the GCE metadata server and Google's keys,
//! Azure IMDS / AD), and the login bindings the fake Infisical verifies them with.
//!
//! ```no_run
//! use fake_infisical::{FakeCloud, FakeInfisical, World};
//!
//! let cloud = FakeCloud::start();
//! let auth = cloud.oidc_auth(&["infisical"], "system:serviceaccount:ns:app");
//! let fake = FakeInfisical::start(World::empty().oidc_identity("id-1", auth, 600, 3600));
//! let jwt = cloud.service_account_token("ns", "app", &["infisical"]);
//! // the client logs in to fake.url() with identity "id-1" and `jwt`
//! ```

mod bindings;
mod routes;
mod sigv4;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime};

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::Response;
use serde_json::{json, Value};
use tokio::sync::{oneshot, watch};

pub use bindings::{AwsAuth, AzureAuth, GcpAuth, GcpAuthType, JwtAuth, JwtKeys, OidcAuth};

use crate::jwt::keys;
use crate::routes::Request;
use crate::server::FakeBody;
use crate::server::{Dropped, Handler};
use crate::util::{new_uuid, parse_pairs, unix_secs};
use crate::RecordedRequest;
use routes::{AwsKey, AzureIdentity, CloudFault, CloudState, InstanceRole};

/// The cloud fakes' endpoints, for faults and counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloudRoute {
    /// `GET /.well-known/openid-configuration` of the Kubernetes issuer.
    OidcDiscovery,
    /// `GET /openid/v1/jwks`, the issuer's keys.
    Jwks,
    /// STS `Action=GetCallerIdentity` (`POST /` form, or `GET /?Action=…`).
    StsGetCallerIdentity,
    /// STS `Action=AssumeRoleWithWebIdentity`.
    StsAssumeRoleWithWebIdentity,
    /// IMDSv2 `PUT /latest/api/token`.
    ImdsToken,
    /// IMDS `GET /latest/meta-data/iam/security-credentials/[ROLE]`.
    ImdsCredentials,
    /// IMDS `GET /latest/meta-data/placement/region`.
    ImdsRegion,
    /// `GET /aws/container-credentials` (ECS / EKS Pod Identity style).
    ContainerCredentials,
    /// GCE metadata `GET /computeMetadata/v1/instance/service-accounts/default/identity`.
    GceIdentity,
    /// Google's public keys: `GET /oauth2/v3/certs` and `GET /service_accounts/v1/jwk/EMAIL`.
    GoogleCerts,
    /// Azure IMDS `GET /metadata/identity/oauth2/token`.
    AzureImds,
    /// Azure AD `POST /TENANT/oauth2/v2.0/token`.
    AzureToken,
    /// Azure AD `GET /TENANT/discovery/keys` (or `/discovery/v2.0/keys`).
    AzureKeys,
    /// Anything else (answered 404).
    Other,
    /// Matches every route (for [`FakeCloud::inject`] and [`FakeCloud::count`] only).
    Any,
}

/// State shared between the handle and the server thread.
struct Shared {
    state: Mutex<CloudState>,
    down: watch::Sender<bool>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, CloudState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Handler for Shared {
    fn down(&self) -> &watch::Sender<bool> {
        &self.down
    }

    async fn serve(
        self: Arc<Self>,
        req: hyper::Request<Incoming>,
    ) -> Result<Response<FakeBody>, Dropped> {
        let at = Instant::now();
        if *self.down.borrow() {
            return Err(Dropped);
        }
        let (parts, body) = req.into_parts();
        let body = body.collect().await.map_err(|_| Dropped)?.to_bytes();
        let request = Request {
            method: parts.method.as_str().to_string(),
            path: parts.uri.path().to_string(),
            url: parts
                .uri
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default(),
            query: parse_pairs(parts.uri.query().unwrap_or("")),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_ascii_lowercase(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
        };
        let mut st = self.lock();
        let route = routes::classify(&request, &st.tenant);
        let reply = match st.take_fault(route) {
            Some(reply) => reply,
            None => routes::handle(&mut st, &request, route),
        };
        st.requests.push(RecordedRequest {
            at,
            method: request.method,
            path: request.path,
            query: request.query,
            headers: request.headers,
            body: String::from_utf8_lossy(&request.body).into_owned(),
            status: reply.status,
            route,
        });
        let mut builder = Response::builder()
            .status(reply.status)
            .header("content-type", reply.content_type);
        for (name, value) in &reply.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder
            .body(FakeBody::full(reply.body))
            .map_err(|_| Dropped)
    }
}

/// A running set of cloud fakes on one loopback HTTP server. Dropping it stops the server.
pub struct FakeCloud {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FakeCloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeCloud")
            .field("url", &self.url())
            .finish()
    }
}

impl FakeCloud {
    /// Starts the server on `127.0.0.1` with a free port, on its own thread and runtime.
    ///
    /// # Panics
    /// When no loopback port can be bound or the runtime cannot be built.
    pub fn start() -> FakeCloud {
        let launch = || -> std::io::Result<FakeCloud> {
            let listener = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
            listener.set_nonblocking(true)?;
            let addr = listener.local_addr()?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let shared = Arc::new(Shared {
                state: Mutex::new(CloudState::new(format!("http://{addr}"))),
                down: watch::Sender::new(false),
            });
            let (shutdown, shutdown_rx) = oneshot::channel();
            let server_shared = shared.clone();
            let thread = std::thread::Builder::new()
                .name(format!("fake-cloud-{}", addr.port()))
                .spawn(move || {
                    runtime.block_on(crate::server::run(
                        listener,
                        None,
                        server_shared,
                        shutdown_rx,
                    ));
                })?;
            Ok(FakeCloud {
                shared,
                addr,
                shutdown: Some(shutdown),
                thread: Some(thread),
            })
        };
        launch().unwrap_or_else(|e| panic!("fake-cloud: cannot start on 127.0.0.1: {e}"))
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `127.0.0.1:PORT` (for `GCE_METADATA_HOST`, which takes host:port).
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    // ----- the Kubernetes service-account issuer -----

    /// The issuer URL (== [`FakeCloud::url`]); it serves `/.well-known/openid-configuration`
    /// and the `jwks_uri` named there.
    pub fn issuer(&self) -> String {
        self.url()
    }

    /// An RS256 JWT with these claims, signed by the issuer's key (header `kid` included).
    pub fn mint_jwt(&self, claims: Value) -> String {
        self.shared.lock().issuer_key.sign(&claims)
    }

    /// The same, signed by a key the JWKS does not publish (but with the issuer key's `kid`),
    /// so verification fails on the signature.
    pub fn mint_foreign_jwt(&self, claims: Value) -> String {
        self.shared.lock().foreign_key.sign(&claims)
    }

    /// A projected service-account token like the kubelet's: `aud` an array, `iss` the issuer,
    /// `sub` `system:serviceaccount:NS:NAME`, `iat`/`nbf` now, `exp` in an hour, and the
    /// `kubernetes.io` claim.
    pub fn service_account_token(&self, namespace: &str, name: &str, audiences: &[&str]) -> String {
        let now = unix_secs(SystemTime::now());
        self.mint_jwt(json!({
            "aud": audiences,
            "exp": now + 3600,
            "iat": now,
            "iss": self.issuer(),
            "jti": new_uuid(),
            "kubernetes.io": {
                "namespace": namespace,
                "node": {"name": "fake-node", "uid": new_uuid()},
                "pod": {"name": format!("{name}-pod"), "uid": new_uuid()},
                "serviceaccount": {"name": name, "uid": new_uuid()},
            },
            "nbf": now,
            "sub": format!("system:serviceaccount:{namespace}:{name}"),
        }))
    }

    /// The issuer's public key as an SPKI PEM (for JWT Auth with static keys).
    pub fn issuer_public_key_pem(&self) -> String {
        keys::ISSUER_PUBLIC.to_string()
    }

    // ----- AWS -----

    /// The STS endpoint (== [`FakeCloud::url`]).
    pub fn sts_url(&self) -> String {
        self.url()
    }

    /// Registers a long-term access key (it must sign without a session token).
    pub fn aws_user(&self, access_key_id: &str, secret_access_key: &str, arn: &str) {
        self.shared.lock().aws_keys.insert(
            access_key_id.into(),
            AwsKey {
                secret: secret_access_key.into(),
                session_token: None,
                arn: arn.into(),
            },
        );
    }

    /// Registers a temporary access key; requests must sign `x-amz-security-token` with
    /// exactly `session_token`.
    pub fn aws_temporary_key(
        &self,
        access_key_id: &str,
        secret_access_key: &str,
        session_token: &str,
        arn: &str,
    ) {
        self.shared.lock().aws_keys.insert(
            access_key_id.into(),
            AwsKey {
                secret: secret_access_key.into(),
                session_token: Some(session_token.into()),
                arn: arn.into(),
            },
        );
    }

    /// Lets issuer-signed tokens with audience `sts.amazonaws.com` assume `role_arn` with
    /// `AssumeRoleWithWebIdentity`; the session's `GetCallerIdentity` ARN is `assumed_arn`.
    pub fn aws_web_identity_role(&self, role_arn: &str, assumed_arn: &str) {
        self.shared
            .lock()
            .web_identity_roles
            .insert(role_arn.into(), assumed_arn.into());
    }

    /// Serves `GET /aws/container-credentials` to requests whose `Authorization` header is
    /// `authorization_token`, with fresh temporary credentials for `arn` each call.
    pub fn aws_container_credentials(&self, authorization_token: &str, arn: &str) {
        self.shared.lock().container = Some((authorization_token.into(), arn.into()));
    }

    /// Serves an EC2 instance role through IMDSv2 (session token required), with fresh
    /// temporary credentials for `arn` each call, and `region` as the placement region.
    pub fn aws_instance_role(&self, role_name: &str, arn: &str, region: &str) {
        self.shared.lock().instance_role = Some(InstanceRole {
            name: role_name.into(),
            arn: arn.into(),
            region: region.into(),
        });
    }

    // ----- GCP -----

    /// Makes `email` the instance's default service account: the metadata server's identity
    /// endpoint hands out Google-signed ID tokens for it.
    pub fn gce_service_account(&self, email: &str) {
        self.shared.lock().gce_account = Some(email.into());
    }

    /// A service-account key file (JSON, like Google's) for `email`, with a fresh
    /// `private_key_id`; its public key is published at `/service_accounts/v1/jwk/EMAIL`.
    /// Infisical only accepts emails like `NAME@PROJECT.iam.gserviceaccount.com`.
    pub fn gcp_service_account_key(&self, email: &str) -> String {
        routes::service_account_key_file(&mut self.shared.lock(), email).to_string()
    }

    // ----- Azure -----

    /// The tenant id of the fake Azure AD.
    pub fn azure_tenant(&self) -> String {
        self.shared.lock().tenant.clone()
    }

    /// A managed identity IMDS hands tokens out for: user-assigned (reached with
    /// `client_id=`) or, with `None`, the system-assigned one (reached without it).
    pub fn azure_managed_identity(&self, client_id: Option<&str>, object_id: &str) {
        let identity = AzureIdentity {
            requested_as: client_id.map(String::from),
            client_id: client_id.map(String::from).unwrap_or_else(new_uuid),
            object_id: object_id.into(),
        };
        self.shared.lock().azure_managed.push(identity);
    }

    /// An app registration that trusts the issuer's tokens (audience
    /// `api://AzureADTokenExchange`) for the client-credentials flow (workload identity).
    pub fn azure_workload_identity(&self, client_id: &str, object_id: &str) {
        self.shared.lock().azure_workload.push(AzureIdentity {
            requested_as: Some(client_id.into()),
            client_id: client_id.into(),
            object_id: object_id.into(),
        });
    }

    // ----- login bindings for the fake Infisical -----

    /// OIDC Auth against this issuer: discovery URL and bound issuer == [`FakeCloud::issuer`].
    pub fn oidc_auth(&self, bound_audiences: &[&str], bound_subject: &str) -> OidcAuth {
        OidcAuth {
            discovery_url: self.issuer(),
            bound_issuer: self.issuer(),
            bound_audiences: bound_audiences.iter().map(|s| s.to_string()).collect(),
            bound_subject: bound_subject.into(),
            bound_claims: Default::default(),
        }
    }

    /// JWT Auth with the issuer's JWKS, bound issuer == [`FakeCloud::issuer`].
    pub fn jwt_auth(&self, bound_audiences: &[&str], bound_subject: &str) -> JwtAuth {
        JwtAuth {
            keys: JwtKeys::Jwks(format!("{}/openid/v1/jwks", self.url())),
            bound_issuer: self.issuer(),
            bound_audiences: bound_audiences.iter().map(|s| s.to_string()).collect(),
            bound_subject: bound_subject.into(),
            bound_claims: Default::default(),
        }
    }

    /// AWS Auth replaying to this STS; no account restriction.
    pub fn aws_auth(&self, allowed_principal_arns: &[&str]) -> AwsAuth {
        AwsAuth {
            sts_endpoint: self.sts_url(),
            allowed_principal_arns: allowed_principal_arns
                .iter()
                .map(|s| s.to_string())
                .collect(),
            allowed_account_ids: Vec::new(),
        }
    }

    /// GCP Auth of type ID token (`gce`) with Google's keys served here.
    pub fn gcp_id_token_auth(&self, allowed_emails: &[&str]) -> GcpAuth {
        self.gcp_auth(GcpAuthType::IdToken, allowed_emails)
    }

    /// GCP Auth of type IAM with the service accounts' keys served here.
    pub fn gcp_iam_auth(&self, allowed_emails: &[&str]) -> GcpAuth {
        self.gcp_auth(GcpAuthType::Iam, allowed_emails)
    }

    fn gcp_auth(&self, kind: GcpAuthType, allowed_emails: &[&str]) -> GcpAuth {
        GcpAuth {
            kind,
            google_url: self.url(),
            allowed_service_accounts: allowed_emails.iter().map(|s| s.to_string()).collect(),
            allowed_projects: Vec::new(),
            allowed_zones: Vec::new(),
        }
    }

    /// Azure Auth for this tenant, with the keys served here.
    pub fn azure_auth(&self, resource: &str, allowed_object_ids: &[&str]) -> AzureAuth {
        AzureAuth {
            authority_url: self.url(),
            tenant_id: self.azure_tenant(),
            resource: resource.into(),
            allowed_service_principal_ids: allowed_object_ids
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }

    // ----- faults and observation -----

    /// The next `times` hits of `route` ([`CloudRoute::Any`]: of any route) answer `status`
    /// with `body` (JSON, XML or text content type by its look); `usize::MAX` means forever.
    pub fn inject(&self, route: CloudRoute, status: u16, body: &str, times: usize) {
        self.shared.lock().faults.push(CloudFault {
            route,
            status,
            body: body.into(),
            times,
        });
    }

    /// While down, every connection (new or open) is closed at once without an answer.
    pub fn set_down(&self, down: bool) {
        self.shared.down.send_replace(down);
    }

    /// How many requests reached `route` ([`CloudRoute::Any`]: all).
    pub fn count(&self, route: CloudRoute) -> usize {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| route == CloudRoute::Any || r.route == route)
            .count()
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest<CloudRoute>> {
        self.shared.lock().requests.clone()
    }
}

impl Drop for FakeCloud {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
