//! The data model: one project with environments, folders, secrets, imports, tags and the
//! machine identities that may log in.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::cloud::{AwsAuth, AzureAuth, GcpAuth, JwtAuth, OidcAuth};
use crate::sample;
use crate::util::{iso8601, new_uuid, normalize_path};

/// Default access-token TTL and max TTL of a new identity (30 days), as on the real server.
pub const DEFAULT_TTL: u64 = 2_592_000;

/// Which server release to answer like, where releases differ (see the crate README).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Release {
    /// The recorded release (October 2024): validation errors are 401, an unknown folder lists
    /// empty, a used-up token gets 400 "…number of uses limit reached", an identity that may
    /// list but not read values gets 403.
    #[default]
    R2024,
    /// 2025: validation errors are 422; otherwise as 2024.
    R2025,
    /// 2026: as 2025, but an unknown environment or folder is 404 `SecretPathNotFound`, a
    /// used-up token is 401, and hidden values come back masked with `secretValueHidden`.
    R2026,
}

/// Universal Auth lockout settings: after `threshold` wrong client secrets, each less than
/// `window` after the previous one, logins are refused for `duration`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failed attempts that lock the identity; 0 disables the lockout.
    pub threshold: u32,
    /// The failure counter is forgotten this long after the last failure.
    pub window: Duration,
    /// How long a locked identity stays locked.
    pub duration: Duration,
}

impl Default for LockoutPolicy {
    /// The server defaults: 3 failures within 30 s lock the identity for 300 s.
    fn default() -> Self {
        Self {
            threshold: 3,
            window: Duration::from_secs(30),
            duration: Duration::from_secs(300),
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct SecretRec {
    pub id: String,
    pub key: String,
    pub value: String,
    pub comment: String,
    pub version: u32,
    pub tag_ids: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Clone, Debug)]
pub(crate) struct ImportRec {
    pub env: String,
    pub path: String,
}

#[derive(Clone, Debug)]
pub(crate) struct Folder {
    pub id: String,
    pub secrets: Vec<SecretRec>,
    pub imports: Vec<ImportRec>,
}

#[derive(Clone, Debug)]
pub(crate) struct TagRec {
    pub id: String,
    pub slug: String,
    pub color: Option<String>,
}

#[derive(Clone, Debug)]
pub(crate) struct EnvRec {
    pub id: String,
    pub slug: String,
    pub name: String,
}

#[derive(Clone, Debug)]
pub(crate) struct UaConfig {
    pub client_id: String,
    pub client_secret: String,
    pub client_secret_id: String,
}

#[derive(Clone, Debug)]
pub(crate) struct Identity {
    pub id: String,
    pub member: bool,
    pub ttl: u64,
    pub max_ttl: u64,
    pub ua: Option<UaConfig>,
    /// Allowed namespaces when Kubernetes auth is configured (empty = any).
    pub k8s: Option<Vec<String>>,
    pub token_auth: bool,
    /// Whether the identity may read values (it may always list keys).
    pub reads_values: bool,
    /// How many authenticated calls one access token allows (0: unlimited).
    pub token_uses: u32,
    pub oidc: Option<OidcAuth>,
    pub jwt: Option<JwtAuth>,
    pub aws: Option<AwsAuth>,
    pub gcp: Option<GcpAuth>,
    pub azure: Option<AzureAuth>,
}

/// A recorded secret: id, environment, path, key, value, comment, tag ids.
type SeedSecret = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
);

/// A service account known to the fake TokenReview.
#[derive(Clone, Debug)]
pub(crate) struct ServiceAccount {
    pub namespace: String,
    #[allow(dead_code)]
    pub name: String,
}

/// The server's data: a single project (id, slug, environments), its folders with secrets and
/// imports, tags, and the machine identities with their auth methods and token TTLs.
///
/// Built with chained calls, e.g.
/// `World::empty().project("p1", "demo", &["dev"]).secret("dev", "/", "KEY", "value")`.
#[derive(Clone, Debug)]
pub struct World {
    pub(crate) project_id: String,
    pub(crate) project_slug: String,
    pub(crate) project_name: String,
    pub(crate) org_id: String,
    pub(crate) created_at: String,
    pub(crate) environments: Vec<EnvRec>,
    /// Keyed by (environment slug, normalized folder path).
    pub(crate) folders: BTreeMap<(String, String), Folder>,
    pub(crate) tags: Vec<TagRec>,
    pub(crate) identities: Vec<Identity>,
    pub(crate) service_accounts: BTreeMap<String, ServiceAccount>,
    pub(crate) v4: bool,
    pub(crate) v3: bool,
    pub(crate) release: Release,
    pub(crate) lockout: LockoutPolicy,
    /// OIDC and JWT logins answer 500 for a token whose `aud` is an array (2024 releases).
    pub(crate) rejects_list_audience: bool,
}

impl Default for World {
    /// Same as [`World::empty`].
    fn default() -> Self {
        Self::empty()
    }
}

impl World {
    /// A project with no environments, secrets or identities. Its id and slug are
    /// `00000000-0000-4000-8000-000000000001` / `test-project` until [`World::project`] sets them.
    pub fn empty() -> World {
        World {
            project_id: "00000000-0000-4000-8000-000000000001".into(),
            project_slug: "test-project".into(),
            project_name: "test-project".into(),
            org_id: sample::ORG_ID.into(),
            created_at: iso8601(SystemTime::now()),
            environments: Vec::new(),
            folders: BTreeMap::new(),
            tags: Vec::new(),
            identities: Vec::new(),
            service_accounts: BTreeMap::new(),
            v4: false,
            v3: true,
            release: Release::R2024,
            lockout: LockoutPolicy::default(),
            rejects_list_audience: false,
        }
    }

    /// The project recorded in `fixtures/seed-data.json`: same ids, slugs, environments,
    /// folders, secrets (with their ids, comments and timestamps), the `dev:/ <- staging:/`
    /// import, the `database` tag and all identities with their TTLs. Client secrets are the
    /// constants in [`sample`] (the recorded ones are redacted).
    pub fn sample() -> World {
        let mut w = World::empty().project(
            sample::PROJECT_ID,
            sample::PROJECT_SLUG,
            &["dev", "staging", "prod"],
        );
        w.created_at = "2026-11-22T11:14:15.870Z".into();
        w.tags.push(TagRec {
            id: sample::TAG_ID.into(),
            slug: sample::TAG_SLUG.into(),
            color: Some("#3366ff".into()),
        });
        let folder_ids = [
            ("dev", "/", "8a0c5f43-33d5-4b1c-9d0e-6b1f0f2c7a10"),
            ("dev", "/app", "a43e7c2d-5f1b-4e8a-bc61-2d9e0c7f5b21"),
            ("dev", "/app/db", "c5b8e1f0-7a2d-4c93-8e4f-1b6a9d3c0e32"),
            ("staging", "/", sample::STAGING_ROOT_FOLDER_ID),
            ("prod", "/", "e9d2a6b4-0c8f-4f17-a5e3-7c4b2d1f9a43"),
        ];
        for (env, path, id) in folder_ids {
            w.ensure_folder(env, path).id = id.into();
        }
        #[rustfmt::skip]
        let secrets: [SeedSecret; 15] = [
            ("013014f3-7b56-449f-bf4b-d7cacd9cc6f6", "dev", "/", "DB_HOST", "db.internal.example", "database host", &[]),
            ("728aadd1-3776-4cdd-b59c-a68fb9a882a5", "dev", "/", "DB_PORT", "5432", "", &[]),
            ("c8dfd099-f583-4117-969d-67eeb4c2d38e", "dev", "/", "DATABASE_URL", "postgres://${DB_HOST}:${DB_PORT}/app", "references DB_HOST and DB_PORT", &[]),
            ("2c98fc9c-712c-41c9-9507-ef91464d1bd8", "dev", "/", "API_KEY", "dev-api-key-123", "", &[]),
            ("5ebd590b-66a7-4d0c-bb99-9259b76d8df0", "dev", "/", "MULTILINE_CERT", "-----BEGIN TEST-----\nline1\nline2\n-----END TEST-----", "", &[]),
            ("dedc9d80-961f-4d78-93bb-84031e376e42", "dev", "/", "LOG_LEVEL", "info", "", &[]),
            ("c09c8e7c-d861-4969-9abe-e64b990ddaa4", "dev", "/app", "APP_NAME", "sidecar-demo", "", &[]),
            ("5cf37482-b38c-47db-9990-eee7f4b990ec", "dev", "/app", "APP_DB_USER", "${dev.app.db.DB_USER}", "cross-path reference to /app/db", &[]),
            ("4caac9d7-8a48-48da-a7fb-6ef330fe1fcd", "dev", "/app/db", "DB_USER", "app_user", "", &[sample::TAG_ID]),
            ("7c271b68-278a-4854-8c7d-dc437fea61a9", "dev", "/app/db", "DB_PASSWORD", "s3cr3t-pw", "", &[sample::TAG_ID]),
            ("2683346a-9b54-47a2-a099-2fb99e23a773", "dev", "/app/db", "DB_DSN", "${DB_USER}:${DB_PASSWORD}@${dev.DB_HOST}:${dev.DB_PORT}", "local + root-path references", &[]),
            ("2b581df9-128e-4c96-a9b7-e11911c95320", "staging", "/", "SHARED_TOKEN", "staging-shared-value", "", &[]),
            ("8981754f-1b0b-4647-9111-85fbb714fb36", "staging", "/", "LOG_LEVEL", "debug", "also defined in dev / -> dev value wins", &[]),
            ("c99662bf-bad2-424b-ac22-00f2a722883f", "prod", "/", "DB_HOST", "db.prod.example", "", &[]),
            ("4d081850-d3ae-4eb8-801e-2ccbb95cbb6e", "prod", "/", "API_KEY", "prod-api-key-456", "", &[]),
        ];
        #[rustfmt::skip]
        let created = [
            "2026-11-22T11:14:16.205Z", "2026-11-22T11:14:16.260Z", "2026-11-22T11:14:16.309Z",
            "2026-11-22T11:14:16.345Z", "2026-11-22T11:14:16.377Z", "2026-11-22T11:14:16.415Z",
            "2026-11-22T11:14:16.465Z", "2026-11-22T11:14:16.513Z", "2026-11-22T11:14:16.572Z",
            "2026-11-22T11:14:16.613Z", "2026-11-22T11:14:16.660Z", "2026-11-22T11:14:16.703Z",
            "2026-11-22T11:14:16.751Z", "2026-11-22T11:14:16.802Z", "2026-11-22T11:14:16.838Z",
        ];
        for ((id, env, path, key, value, comment, tags), at) in secrets.into_iter().zip(created) {
            w.ensure_folder(env, path).secrets.push(SecretRec {
                id: id.into(),
                key: key.into(),
                value: value.into(),
                comment: comment.into(),
                version: 1,
                tag_ids: tags.iter().map(|t| t.to_string()).collect(),
                created_at: at.into(),
                updated_at: at.into(),
            });
        }
        w = w
            .import("dev", "/", "staging", "/")
            .universal_auth_identity(
                sample::UA_IDENTITY_ID,
                sample::UA_CLIENT_ID,
                sample::UA_CLIENT_SECRET,
                DEFAULT_TTL,
                DEFAULT_TTL,
            )
            .universal_auth_identity(
                sample::RENEWABLE_IDENTITY_ID,
                sample::RENEWABLE_CLIENT_ID,
                sample::RENEWABLE_CLIENT_SECRET,
                sample::RENEWABLE_TTL,
                sample::RENEWABLE_MAX_TTL,
            )
            .universal_auth_identity(
                sample::SHORT_TTL_IDENTITY_ID,
                sample::SHORT_TTL_CLIENT_ID,
                sample::SHORT_TTL_CLIENT_SECRET,
                sample::SHORT_TTL,
                sample::SHORT_MAX_TTL,
            )
            .non_member_identity(
                sample::NO_ACCESS_IDENTITY_ID,
                sample::NO_ACCESS_CLIENT_ID,
                sample::NO_ACCESS_CLIENT_SECRET,
            )
            .token_identity(sample::TOKEN_IDENTITY_ID, DEFAULT_TTL, DEFAULT_TTL)
            .kubernetes_identity(
                sample::K8S_IDENTITY_ID,
                &[sample::K8S_NAMESPACE],
                DEFAULT_TTL,
                DEFAULT_TTL,
            )
            .kubernetes_jwt(
                sample::K8S_VALID_JWT,
                sample::K8S_NAMESPACE,
                sample::K8S_SERVICE_ACCOUNT,
            )
            .kubernetes_jwt(
                sample::K8S_OTHER_NS_JWT,
                sample::K8S_OTHER_NAMESPACE,
                sample::K8S_SERVICE_ACCOUNT,
            );
        // The recorded client-secret id of the main identity (it appears in its JWT claims).
        if let Some(ua) = w.identity_mut(sample::UA_IDENTITY_ID).ua.as_mut() {
            ua.client_secret_id = "aeb8ea60-9e53-44eb-924d-5cc81d27d3ea".into();
        }
        w
    }

    /// Sets the project's id and slug (also used as its name) and adds these environments.
    pub fn project(mut self, id: &str, slug: &str, envs: &[&str]) -> World {
        self.project_id = id.into();
        self.project_slug = slug.into();
        self.project_name = slug.into();
        for env in envs {
            self.ensure_env(env);
        }
        self
    }

    /// Adds (or overwrites) a shared secret; the environment and folders are created as needed.
    pub fn secret(self, env: &str, path: &str, key: &str, value: &str) -> World {
        self.tagged_secret(env, path, key, value, &[])
    }

    /// Like [`World::secret`], with tags given by slug (tags are created as needed).
    pub fn tagged_secret(
        mut self,
        env: &str,
        path: &str,
        key: &str,
        value: &str,
        tags: &[&str],
    ) -> World {
        let tag_ids: Vec<String> = tags.iter().map(|t| self.ensure_tag(t)).collect();
        self.upsert_secret(env, path, key, value, false);
        if let Some(s) = self.find_secret_mut(env, path, key) {
            s.tag_ids = tag_ids;
        }
        self
    }

    /// Makes folder `env:path` import `from_env:from_path` (appended after existing imports).
    pub fn import(mut self, env: &str, path: &str, from_env: &str, from_path: &str) -> World {
        self.add_import(env, path, from_env, from_path);
        self
    }

    /// A project member that logs in with Universal Auth.
    pub fn universal_auth_identity(
        mut self,
        identity_id: &str,
        client_id: &str,
        client_secret: &str,
        ttl: u64,
        max_ttl: u64,
    ) -> World {
        let identity = self.identity_mut(identity_id);
        identity.member = true;
        identity.ttl = ttl;
        identity.max_ttl = max_ttl;
        identity.ua = Some(UaConfig {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            client_secret_id: new_uuid(),
        });
        self
    }

    /// A project member that logs in with Kubernetes Auth; an empty namespace list allows any.
    /// Service-account tokens are registered with [`World::kubernetes_jwt`].
    pub fn kubernetes_identity(
        mut self,
        identity_id: &str,
        allowed_namespaces: &[&str],
        ttl: u64,
        max_ttl: u64,
    ) -> World {
        let identity = self.identity_mut(identity_id);
        identity.member = true;
        identity.ttl = ttl;
        identity.max_ttl = max_ttl;
        identity.k8s = Some(allowed_namespaces.iter().map(|s| s.to_string()).collect());
        self
    }

    /// A project member that logs in with OIDC Auth (see [`crate::FakeCloud::oidc_auth`]).
    pub fn oidc_identity(
        mut self,
        identity_id: &str,
        auth: OidcAuth,
        ttl: u64,
        max_ttl: u64,
    ) -> World {
        self.member_with_ttl(identity_id, ttl, max_ttl).oidc = Some(auth);
        self
    }

    /// A project member that logs in with JWT Auth (see [`crate::FakeCloud::jwt_auth`]).
    pub fn jwt_identity(
        mut self,
        identity_id: &str,
        auth: JwtAuth,
        ttl: u64,
        max_ttl: u64,
    ) -> World {
        self.member_with_ttl(identity_id, ttl, max_ttl).jwt = Some(auth);
        self
    }

    /// A project member that logs in with AWS Auth (see [`crate::FakeCloud::aws_auth`]).
    pub fn aws_identity(
        mut self,
        identity_id: &str,
        auth: AwsAuth,
        ttl: u64,
        max_ttl: u64,
    ) -> World {
        self.member_with_ttl(identity_id, ttl, max_ttl).aws = Some(auth);
        self
    }

    /// A project member that logs in with GCP Auth (see [`crate::FakeCloud::gcp_iam_auth`]
    /// and [`crate::FakeCloud::gcp_id_token_auth`]).
    pub fn gcp_identity(
        mut self,
        identity_id: &str,
        auth: GcpAuth,
        ttl: u64,
        max_ttl: u64,
    ) -> World {
        self.member_with_ttl(identity_id, ttl, max_ttl).gcp = Some(auth);
        self
    }

    /// A project member that logs in with Azure Auth (see [`crate::FakeCloud::azure_auth`]).
    pub fn azure_identity(
        mut self,
        identity_id: &str,
        auth: AzureAuth,
        ttl: u64,
        max_ttl: u64,
    ) -> World {
        self.member_with_ttl(identity_id, ttl, max_ttl).azure = Some(auth);
        self
    }

    /// On: OIDC and JWT logins answer 500 "Something went wrong" for a token whose `aud` is an
    /// array (as every kubelet-projected token's is), like 2024 releases whose audience match
    /// handed the array to a string-only glob matcher. Off (default): arrays match like
    /// current releases.
    pub fn oidc_rejects_list_audience(mut self, rejects: bool) -> World {
        self.rejects_list_audience = rejects;
        self
    }

    fn member_with_ttl(&mut self, identity_id: &str, ttl: u64, max_ttl: u64) -> &mut Identity {
        let identity = self.identity_mut(identity_id);
        identity.member = true;
        identity.ttl = ttl;
        identity.max_ttl = max_ttl;
        identity
    }

    /// A project member with Token Auth: tokens come from [`crate::FakeInfisical::issue_token`].
    pub fn token_identity(mut self, identity_id: &str, ttl: u64, max_ttl: u64) -> World {
        let identity = self.identity_mut(identity_id);
        identity.member = true;
        identity.ttl = ttl;
        identity.max_ttl = max_ttl;
        identity.token_auth = true;
        self
    }

    /// An organization identity with Universal Auth (default TTLs) that is not a member of the
    /// project: it can log in but every secrets call answers 403.
    pub fn non_member_identity(
        mut self,
        identity_id: &str,
        client_id: &str,
        client_secret: &str,
    ) -> World {
        let identity = self.identity_mut(identity_id);
        identity.member = false;
        identity.ttl = DEFAULT_TTL;
        identity.max_ttl = DEFAULT_TTL;
        identity.ua = Some(UaConfig {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            client_secret_id: new_uuid(),
        });
        self
    }

    /// Registers a service-account JWT that the fake TokenReview accepts, for that namespace
    /// and service-account name.
    pub fn kubernetes_jwt(mut self, jwt: &str, namespace: &str, service_account: &str) -> World {
        self.service_accounts.insert(
            jwt.into(),
            ServiceAccount {
                namespace: namespace.into(),
                name: service_account.into(),
            },
        );
        self
    }

    /// Serves the newer `/api/v4/secrets` and `/api/v1/projects/slug/{slug}` routes (off by
    /// default, like the recorded server).
    pub fn v4(mut self, enabled: bool) -> World {
        self.v4 = enabled;
        self
    }

    /// Off: `/api/v3/secrets/raw` answers route-not-found, like a server that has dropped it
    /// (none has yet; clients must still cope). Turn v4 on with it.
    pub fn v3(mut self, enabled: bool) -> World {
        self.v3 = enabled;
        self
    }

    /// Answers like another server release (default: the recorded 2024 one).
    pub fn release(mut self, release: Release) -> World {
        self.release = release;
        self
    }

    /// Lets the identity list keys but not read values (a role without "read value").
    pub fn list_only(mut self, identity_id: &str) -> World {
        self.identity_mut(identity_id).reads_values = false;
        self
    }

    /// Limits each access token of the identity to `uses` authenticated calls.
    pub fn token_use_limit(mut self, identity_id: &str, uses: u32) -> World {
        self.identity_mut(identity_id).token_uses = uses;
        self
    }

    /// Universal Auth lockout settings (default: 3 failures within 30 s lock for 300 s).
    pub fn lockout(mut self, policy: LockoutPolicy) -> World {
        self.lockout = policy;
        self
    }

    // ----- internal mutators (also used while the server runs) -----

    pub(crate) fn ensure_env(&mut self, slug: &str) {
        if !self.environments.iter().any(|e| e.slug == slug) {
            let name = match slug {
                "dev" => "Development".to_string(),
                "staging" => "Staging".to_string(),
                "prod" => "Production".to_string(),
                other => other.to_string(),
            };
            self.environments.push(EnvRec {
                id: new_uuid(),
                slug: slug.into(),
                name,
            });
        }
        self.ensure_folder_only(slug, "/");
    }

    pub(crate) fn has_env(&self, slug: &str) -> bool {
        self.environments.iter().any(|e| e.slug == slug)
    }

    fn ensure_folder_only(&mut self, env: &str, path: &str) -> &mut Folder {
        self.folders
            .entry((env.to_string(), path.to_string()))
            .or_insert_with(|| Folder {
                id: new_uuid(),
                secrets: Vec::new(),
                imports: Vec::new(),
            })
    }

    /// The folder `env:path`, creating the environment, the folder and its parents.
    pub(crate) fn ensure_folder(&mut self, env: &str, path: &str) -> &mut Folder {
        self.ensure_env(env);
        let path = normalize_path(path);
        let mut current = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            current.push('/');
            current.push_str(part);
            let p = current.clone();
            self.ensure_folder_only(env, &p);
        }
        self.ensure_folder_only(env, &path)
    }

    pub(crate) fn folder(&self, env: &str, path: &str) -> Option<&Folder> {
        self.folders.get(&(env.to_string(), path.to_string()))
    }

    fn ensure_tag(&mut self, slug: &str) -> String {
        if let Some(t) = self.tags.iter().find(|t| t.slug == slug) {
            return t.id.clone();
        }
        let id = new_uuid();
        self.tags.push(TagRec {
            id: id.clone(),
            slug: slug.into(),
            color: None,
        });
        id
    }

    pub(crate) fn tag(&self, id: &str) -> Option<&TagRec> {
        self.tags.iter().find(|t| t.id == id)
    }

    fn find_secret_mut(&mut self, env: &str, path: &str, key: &str) -> Option<&mut SecretRec> {
        self.folders
            .get_mut(&(env.to_string(), normalize_path(path)))
            .and_then(|f| f.secrets.iter_mut().find(|s| s.key == key))
    }

    /// Creates or updates a secret. With `bump`, an update raises the version and `updatedAt`.
    pub(crate) fn upsert_secret(
        &mut self,
        env: &str,
        path: &str,
        key: &str,
        value: &str,
        bump: bool,
    ) {
        let now = iso8601(SystemTime::now());
        let folder = self.ensure_folder(env, path);
        if let Some(s) = folder.secrets.iter_mut().find(|s| s.key == key) {
            s.value = value.into();
            if bump {
                s.version += 1;
                s.updated_at = now;
            }
        } else {
            folder.secrets.push(SecretRec {
                id: new_uuid(),
                key: key.into(),
                value: value.into(),
                comment: String::new(),
                version: 1,
                tag_ids: Vec::new(),
                created_at: now.clone(),
                updated_at: now,
            });
        }
    }

    pub(crate) fn remove_secret(&mut self, env: &str, path: &str, key: &str) {
        if let Some(f) = self
            .folders
            .get_mut(&(env.to_string(), normalize_path(path)))
        {
            f.secrets.retain(|s| s.key != key);
        }
    }

    pub(crate) fn add_import(&mut self, env: &str, path: &str, from_env: &str, from_path: &str) {
        let from_path = normalize_path(from_path);
        self.ensure_folder(env, path).imports.push(ImportRec {
            env: from_env.into(),
            path: from_path,
        });
    }

    pub(crate) fn identity_mut(&mut self, identity_id: &str) -> &mut Identity {
        if let Some(i) = self.identities.iter().position(|i| i.id == identity_id) {
            return &mut self.identities[i];
        }
        self.identities.push(Identity {
            id: identity_id.into(),
            member: true,
            ttl: DEFAULT_TTL,
            max_ttl: DEFAULT_TTL,
            ua: None,
            k8s: None,
            token_auth: false,
            reads_values: true,
            token_uses: 0,
            oidc: None,
            jwt: None,
            aws: None,
            gcp: None,
            azure: None,
        });
        let last = self.identities.len() - 1;
        &mut self.identities[last]
    }

    pub(crate) fn identity(&self, identity_id: &str) -> Option<&Identity> {
        self.identities.iter().find(|i| i.id == identity_id)
    }
}
