//! How an identity's cloud login method is configured in the fake Infisical (the fields of
//! Infisical's `identity_*_auths` rows that the login checks). Built by the helpers on
//! [`crate::FakeCloud`]; every field is public so a test can bind something wrong.

use std::collections::BTreeMap;

/// OIDC Auth: the server fetches `<discovery_url>/.well-known/openid-configuration`, then its
/// `jwks_uri`, verifies the token's RS256 signature and issuer, then the bound fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidcAuth {
    /// Base URL of the OIDC provider (without `/.well-known/…`).
    pub discovery_url: String,
    /// Required `iss` (checked by the signature verification); empty checks nothing.
    pub bound_issuer: String,
    /// Allowed audiences (globs); the token's `aud` (string or array) must match one. Empty
    /// allows any.
    pub bound_audiences: Vec<String>,
    /// Required `sub` (glob); empty allows any.
    pub bound_subject: String,
    /// Claims (dot paths) and their allowed values (globs).
    pub bound_claims: BTreeMap<String, Vec<String>>,
}

/// Where JWT Auth finds its verification keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JwtKeys {
    /// A JWKS document at this URL (keys looked up by the token's `kid`).
    Jwks(String),
    /// SPKI PEM public keys, each tried in turn.
    Static(Vec<String>),
}

/// JWT Auth: verification with a JWKS or static keys, then the bound fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwtAuth {
    /// The keys.
    pub keys: JwtKeys,
    /// Required `iss`; empty checks nothing.
    pub bound_issuer: String,
    /// Allowed audiences (globs); empty allows any.
    pub bound_audiences: Vec<String>,
    /// Required `sub` (glob); empty allows any.
    pub bound_subject: String,
    /// Claims (dot paths) and their allowed values (globs).
    pub bound_claims: BTreeMap<String, Vec<String>>,
}

/// AWS Auth: the server replays the client's signed `GetCallerIdentity` request to STS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsAuth {
    /// Where the request is replayed (the real server derives `https://sts.<region>.amazonaws.com`
    /// from the signature's credential scope).
    pub sts_endpoint: String,
    /// Allowed principal ARNs (`*` wildcards); empty allows any.
    pub allowed_principal_arns: Vec<String>,
    /// Allowed account ids; empty allows any.
    pub allowed_account_ids: Vec<String>,
}

/// Which GCP credential a GCP Auth identity takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GcpAuthType {
    /// `gce`: a Google-signed instance identity token.
    IdToken,
    /// `iam`: a JWT signed with a service-account key.
    Iam,
}

/// GCP Auth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GcpAuth {
    /// ID token or IAM.
    pub kind: GcpAuthType,
    /// Base URL standing in for `https://www.googleapis.com` (Google's certificates and the
    /// service accounts' public keys).
    pub google_url: String,
    /// Allowed service-account emails; empty allows any.
    pub allowed_service_accounts: Vec<String>,
    /// Allowed projects (ID tokens with `format=full` only); empty allows any.
    pub allowed_projects: Vec<String>,
    /// Allowed zones (ID tokens with `format=full` only); empty allows any.
    pub allowed_zones: Vec<String>,
}

/// Azure Auth: an Azure AD access token verified with the tenant's keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AzureAuth {
    /// Base URL standing in for `https://login.microsoftonline.com` (keys at
    /// `<authority_url>/<tenant>/discovery/keys`).
    pub authority_url: String,
    /// The tenant id (`iss` must be `https://sts.windows.net/<tenant>/`, `tid` must match).
    pub tenant_id: String,
    /// Required audience (a trailing `/` is tolerated when the token's has none).
    pub resource: String,
    /// Allowed service-principal object ids (`oid`); empty allows any.
    pub allowed_service_principal_ids: Vec<String>,
}
