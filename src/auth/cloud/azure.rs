//! Azure login: an Azure AD access token for the identity's resource, from AKS Workload
//! Identity (a client-credentials grant with the projected federated token as the client
//! assertion) or else from the instance metadata service (a managed identity).

use std::path::PathBuf;

use reqwest::Method;
use serde::Deserialize;

use super::{form_body, form_encode, one_line, CloudError, CloudHttp, CloudRequest};
use crate::auth::read_credential_file;
use crate::secrets::SecretValue;

/// The resource Infisical's Azure auth expects by default.
pub const DEFAULT_RESOURCE: &str = "https://management.azure.com/";
/// The Azure instance metadata token endpoint.
pub const DEFAULT_IMDS_ENDPOINT: &str = "http://169.254.169.254/metadata/identity/oauth2/token";
/// Azure AD, unless `AZURE_AUTHORITY_HOST` says otherwise.
pub const DEFAULT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com/";

/// Where the Azure token comes from, read from the environment once at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AzureSettings {
    /// The resource (audience) of the token.
    pub resource: String,
    /// A user-assigned managed identity's client id (IMDS only).
    pub client_id: Option<String>,
    /// AKS Workload Identity, when its variables are set.
    pub workload: Option<WorkloadIdentity>,
    /// The IMDS token endpoint (`INFISICAL_AZURE_IMDS_ENDPOINT`).
    pub imds_endpoint: String,
}

/// The variables the AKS Workload Identity webhook injects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadIdentity {
    /// `AZURE_CLIENT_ID`.
    pub client_id: String,
    /// `AZURE_TENANT_ID`.
    pub tenant_id: String,
    /// `AZURE_FEDERATED_TOKEN_FILE`, re-read at every login.
    pub token_file: PathBuf,
    /// `AZURE_AUTHORITY_HOST`, ending in `/`.
    pub authority_host: String,
}

impl AzureSettings {
    /// Settings for `resource` and an optional user-assigned identity, with the Workload
    /// Identity variables and endpoint overrides read through `var`.
    pub fn from_env(
        resource: String,
        client_id: Option<String>,
        var: impl Fn(&str) -> Option<String>,
    ) -> Self {
        let get = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let workload = match (
            get("AZURE_CLIENT_ID"),
            get("AZURE_TENANT_ID"),
            get("AZURE_FEDERATED_TOKEN_FILE"),
        ) {
            (Some(client_id), Some(tenant_id), Some(file)) => Some(WorkloadIdentity {
                client_id,
                tenant_id,
                token_file: file.into(),
                authority_host: format!(
                    "{}/",
                    get("AZURE_AUTHORITY_HOST")
                        .as_deref()
                        .unwrap_or(DEFAULT_AUTHORITY_HOST)
                        .trim_end_matches('/')
                ),
            }),
            _ => None,
        };
        Self {
            resource,
            client_id,
            workload,
            imds_endpoint: get("INFISICAL_AZURE_IMDS_ENDPOINT")
                .unwrap_or_else(|| DEFAULT_IMDS_ENDPOINT.to_owned()),
        }
    }

    /// The federated token file a sidecar watches, if any.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        self.workload.iter().map(|w| w.token_file.clone()).collect()
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: SecretValue,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error: Option<String>,
    error_description: Option<String>,
}

/// An access token for the configured resource.
pub async fn access_token(
    http: &CloudHttp,
    settings: &AzureSettings,
) -> Result<SecretValue, CloudError> {
    match &settings.workload {
        Some(workload) => workload_token(http, settings, workload).await,
        None => imds_token(http, settings).await,
    }
}

async fn workload_token(
    http: &CloudHttp,
    settings: &AzureSettings,
    workload: &WorkloadIdentity,
) -> Result<SecretValue, CloudError> {
    let assertion = read_credential_file(&workload.token_file, "Azure federated token")
        .map_err(|e| CloudError::Local(e.to_string()))?;
    let url = format!(
        "{}{}/oauth2/v2.0/token",
        workload.authority_host, workload.tenant_id
    );
    let scope = format!("{}/.default", settings.resource.trim_end_matches('/'));
    let form = form_body(&[
        ("grant_type", "client_credentials"),
        ("client_id", &workload.client_id),
        ("scope", &scope),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion.expose()),
    ]);
    let service = "Azure AD (workload identity)";
    let (status, body) = http
        .send(CloudRequest {
            service,
            method: Method::POST,
            url: url.clone(),
            headers: Vec::new(),
            form: Some(form),
            unreachable_hint: "; check egress to Azure AD, or AZURE_AUTHORITY_HOST",
        })
        .await?;
    answer(
        service,
        url,
        status,
        &body,
        &format!(
            "; check the federated credential of app {} (issuer: the cluster's OIDC issuer, \
             subject: system:serviceaccount:NAMESPACE:NAME)",
            workload.client_id
        ),
    )
}

async fn imds_token(http: &CloudHttp, settings: &AzureSettings) -> Result<SecretValue, CloudError> {
    let mut url = format!(
        "{}?api-version=2018-02-01&resource={}",
        settings.imds_endpoint,
        form_encode(&settings.resource).as_str()
    );
    if let Some(client_id) = &settings.client_id {
        url.push_str("&client_id=");
        url.push_str(&form_encode(client_id));
    }
    let service = "the Azure instance metadata service";
    let (status, body) = http
        .send(CloudRequest {
            service,
            method: Method::GET,
            url: url.clone(),
            headers: vec![("Metadata", "true")],
            form: None,
            unreachable_hint: "; not running on Azure? use another --auth-method (on AKS, enable \
                               Workload Identity and label the pod azure.workload.identity/use: \
                               \"true\")",
        })
        .await?;
    answer(
        service,
        url,
        status,
        &body,
        "; assign a managed identity to the VM or node pool (pass --azure-client-id for a \
         user-assigned one)",
    )
}

fn answer(
    service: &'static str,
    url: String,
    status: reqwest::StatusCode,
    body: &[u8],
    hint: &str,
) -> Result<SecretValue, CloudError> {
    if !status.is_success() {
        let detail = match serde_json::from_slice::<ErrorAnswer>(body) {
            Ok(ErrorAnswer {
                error: Some(error),
                error_description,
            }) => {
                // AAD descriptions carry trace ids on later lines; the first line says it all.
                let first = error_description
                    .as_deref()
                    .and_then(|d| d.lines().next())
                    .unwrap_or("");
                format!("{error}: {first}")
            }
            _ => one_line(body),
        };
        return Err(CloudError::Refused {
            service,
            url,
            status: status.as_u16(),
            detail,
            hint: hint.to_owned(),
        });
    }
    serde_json::from_slice::<TokenAnswer>(body)
        .map(|answer| answer.access_token)
        .map_err(|_| CloudError::Malformed {
            service,
            url,
            detail: "no access_token".to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn workload_identity_needs_all_three_variables() {
        let vars: HashMap<&str, &str> = [
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/azure/token"),
            ("AZURE_AUTHORITY_HOST", "http://127.0.0.1:9"),
        ]
        .into();
        let settings = AzureSettings::from_env(DEFAULT_RESOURCE.into(), None, |name| {
            vars.get(name).map(|v| (*v).to_owned())
        });
        let workload = settings.workload.expect("workload identity");
        assert_eq!(workload.authority_host, "http://127.0.0.1:9/");
        let without_tenant = AzureSettings::from_env(DEFAULT_RESOURCE.into(), None, |name| {
            (name != "AZURE_TENANT_ID")
                .then(|| vars.get(name).map(|v| (*v).to_owned()))
                .flatten()
        });
        assert!(without_tenant.workload.is_none());
        assert_eq!(without_tenant.imds_endpoint, DEFAULT_IMDS_ENDPOINT);
    }
}
