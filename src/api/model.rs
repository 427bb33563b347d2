//! The wire format of the Infisical endpoints this tool calls.
//!
//! Only the fields we use are declared; unknown fields are ignored so newer servers keep working,
//! and nothing a real server omits (such as `reqId` in errors) is required.

use serde::Deserialize;

use crate::secrets::SecretValue;

/// The body of a successful login or renewal.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenResponse {
    /// The access token (a JWT).
    pub access_token: SecretValue,
    /// Seconds until it expires; 0 on legacy servers means "no expiry".
    #[serde(default)]
    pub expires_in: f64,
    /// Seconds from creation after which it can no longer be renewed; 0 means none.
    #[serde(rename = "accessTokenMaxTTL", default)]
    pub access_token_max_ttl: f64,
}

/// The body of `GET /api/v4/secrets` and `GET /api/v3/secrets/raw`.
#[derive(Deserialize)]
pub struct ListResponse {
    /// The folder's own secrets (and sub-folders' with `recursive`).
    pub secrets: Vec<WireSecret>,
    /// Imported folders in position order; absent unless imports were requested.
    #[serde(default)]
    pub imports: Option<Vec<WireImport>>,
}

impl WireSecret {
    /// Whether the value was withheld: masked (`secretValueHidden`) or missing altogether.
    pub fn is_hidden(&self) -> bool {
        self.secret_value_hidden || self.secret_value.is_none()
    }

    /// The value; empty for a hidden one (callers refuse those first).
    pub fn into_value(self) -> SecretValue {
        self.secret_value.unwrap_or_else(|| SecretValue::from(""))
    }
}

/// One secret as listed.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireSecret {
    /// The key.
    pub secret_key: String,
    /// The value (expanded when references were expanded). Absent when the server withholds
    /// it, which is treated like a hidden value.
    #[serde(default)]
    pub secret_value: Option<SecretValue>,
    /// The folder the secret lives in (matters with `recursive`); absent on imported secrets.
    #[serde(default)]
    pub secret_path: Option<String>,
    /// True when the identity may list but not read values (the value is a mask).
    #[serde(default)]
    pub secret_value_hidden: bool,
    /// `shared` or `personal` (personal only exists for users).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

/// One imported folder and its secrets.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireImport {
    /// The imported folder.
    #[serde(default)]
    pub secret_path: String,
    /// The imported environment.
    #[serde(default)]
    pub environment: String,
    /// Its secrets (nested imports appended after its own).
    #[serde(default)]
    pub secrets: Vec<WireSecret>,
}

/// A project, as returned when resolving a slug.
#[derive(Deserialize)]
pub struct ProjectResponse {
    /// The project id, when the project is the top-level object.
    #[serde(default)]
    pub id: Option<String>,
    /// The project, when it is wrapped.
    #[serde(default, alias = "workspace")]
    pub project: Option<Box<ProjectResponse>>,
}

impl ProjectResponse {
    /// The project id, wherever the server put it.
    pub fn into_id(self) -> Option<String> {
        self.id.or_else(|| self.project.and_then(|p| p.into_id()))
    }
}

/// An error body: `{statusCode, message, error}` (message may be a list of validation issues).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// The error class name, e.g. `UnauthorizedError`, `TokenError`, `NotFound`.
    #[serde(default)]
    pub error: Option<String>,
    /// A sentence, or a list of validation issues.
    #[serde(default)]
    pub message: Option<serde_json::Value>,
}

impl ErrorBody {
    /// The message as one line (validation issues joined).
    pub fn message_text(&self) -> String {
        match &self.message {
            Some(serde_json::Value::String(text)) => text.clone(),
            Some(serde_json::Value::Array(issues)) => issues
                .iter()
                .map(|issue| {
                    let path = issue
                        .get("path")
                        .and_then(|p| p.as_array())
                        .map(|p| {
                            p.iter()
                                .map(|s| s.as_str().map_or_else(|| s.to_string(), str::to_owned))
                                .collect::<Vec<_>>()
                                .join(".")
                        })
                        .unwrap_or_default();
                    let text = issue.get("message").and_then(|m| m.as_str()).unwrap_or("");
                    format!("{path}: {text}")
                })
                .collect::<Vec<_>>()
                .join("; "),
            Some(other) => other.to_string(),
            None => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_issue_lists_become_one_line() {
        let body: ErrorBody = serde_json::from_str(
            r#"{"statusCode":401,"message":[{"code":"invalid_type","path":["clientId"],"message":"Required"},{"path":["clientSecret"],"message":"Required"}],"error":"ValidationFailure"}"#,
        )
        .unwrap();
        assert_eq!(
            body.message_text(),
            "clientId: Required; clientSecret: Required"
        );
    }

    #[test]
    fn list_without_imports_field_parses() {
        let list: ListResponse = serde_json::from_str(
            r#"{"secrets":[{"secretKey":"A","secretValue":"1","secretPath":"/","extra":true}]}"#,
        )
        .unwrap();
        assert!(list.imports.is_none());
        assert_eq!(
            list.secrets[0]
                .secret_value
                .as_ref()
                .map(SecretValue::expose),
            Some("1")
        );
    }

    #[test]
    fn project_id_is_found_wrapped_or_not() {
        let direct: ProjectResponse = serde_json::from_str(r#"{"id":"p1","slug":"s"}"#).unwrap();
        assert_eq!(direct.into_id().as_deref(), Some("p1"));
        let wrapped: ProjectResponse = serde_json::from_str(r#"{"project":{"id":"p2"}}"#).unwrap();
        assert_eq!(wrapped.into_id().as_deref(), Some("p2"));
    }
}
