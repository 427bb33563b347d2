//! One AdmissionReview (`admission.k8s.io/v1`) in, one out: the decision for a pod CREATE.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::annotations::{Decision, Reader};
use crate::inject;

/// What the webhook needs to decide, fixed at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The annotation and label prefix, ending in `/`.
    pub prefix: String,
    /// The tool's image when a pod does not name one.
    pub image: String,
}

/// How a review ended, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Patched.
    Injected,
    /// Allowed unchanged (not selected, already injected, not a pod CREATE).
    Skipped,
    /// Denied: a bad annotation or a pod that cannot be injected.
    Denied,
}

impl Outcome {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Injected => "injected",
            Outcome::Skipped => "skipped",
            Outcome::Denied => "denied",
        }
    }
}

/// A body that is not an AdmissionReview this webhook can answer (HTTP 400).
#[derive(Debug, thiserror::Error)]
pub enum BadReview {
    /// Not JSON, or not the shape of an AdmissionReview.
    #[error("not an AdmissionReview: {0}")]
    Parse(#[source] serde_json::Error),
    /// Another API version.
    #[error("unsupported AdmissionReview apiVersion {0:?}: this webhook speaks admission.k8s.io/v1 (set admissionReviewVersions: [v1])")]
    Version(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Review {
    api_version: String,
    request: Request,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    uid: String,
    #[serde(default)]
    kind: GroupVersionKind,
    #[serde(default)]
    operation: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    object: Value,
}

#[derive(Default, Deserialize)]
struct GroupVersionKind {
    #[serde(default)]
    group: String,
    #[serde(default)]
    kind: String,
}

/// The answer to one review, and how it ended.
#[derive(Debug)]
pub struct Answer {
    /// The AdmissionReview to send back.
    pub review: Value,
    /// How it ended.
    pub outcome: Outcome,
    /// A one-line summary for the log: the pod and what happened.
    pub summary: String,
}

/// Reviews the body of a `POST /mutate`.
pub fn review(settings: &Settings, body: &[u8]) -> Result<Answer, BadReview> {
    let review: Review = serde_json::from_slice(body).map_err(BadReview::Parse)?;
    if review.api_version != "admission.k8s.io/v1" {
        return Err(BadReview::Version(review.api_version));
    }
    let request = review.request;
    let pod = &request.object;
    let name = pod["metadata"]["name"]
        .as_str()
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .or_else(|| {
            pod["metadata"]["generateName"]
                .as_str()
                .map(|prefix| format!("{prefix}*"))
        })
        .unwrap_or_else(|| "(unnamed)".into());
    let who = format!(
        "pod {}/{name}",
        request.namespace.as_deref().unwrap_or("(no namespace)")
    );
    let respond = |response: Value, outcome: Outcome, what: String| Answer {
        review: json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": response,
        }),
        outcome,
        summary: format!("{who}: {what}"),
    };
    let allow = json!({"uid": request.uid, "allowed": true});

    let is_pod = request.kind.group.is_empty() && request.kind.kind == "Pod";
    if !is_pod || request.operation != "CREATE" {
        return Ok(respond(
            allow,
            Outcome::Skipped,
            format!(
                "not a pod CREATE ({} {}): unchanged",
                request.operation, request.kind.kind
            ),
        ));
    }
    let labels = string_map(&pod["metadata"]["labels"]);
    let annotations = string_map(&pod["metadata"]["annotations"]);
    let reader = Reader::new(&settings.prefix, &settings.image, &annotations);
    let refused = match reader.decide(&labels) {
        Ok(Decision::Skip(why)) => {
            return Ok(respond(
                allow,
                Outcome::Skipped,
                format!("{why}: unchanged"),
            ))
        }
        Ok(Decision::Inject(plan)) => match inject::patch(&plan, pod, &settings.prefix) {
            Ok(ops) => {
                let patch = serde_json::to_vec(&ops).unwrap_or_default();
                let response = json!({
                    "uid": request.uid,
                    "allowed": true,
                    "patchType": "JSONPatch",
                    "patch": base64::engine::general_purpose::STANDARD.encode(patch),
                });
                return Ok(respond(
                    response,
                    Outcome::Injected,
                    format!(
                        "injected (mode {:?}, {} patch operations)",
                        plan.mode,
                        ops.len()
                    ),
                ));
            }
            Err(refused) => refused.0,
        },
        Err(bad) => bad.to_string(),
    };
    let response = json!({
        "uid": request.uid,
        "allowed": false,
        "status": {
            "code": 400,
            "reason": "BadRequest",
            "message": format!("infisical-materializer: {refused}"),
        },
    });
    Ok(respond(
        response,
        Outcome::Denied,
        format!("denied: {refused}"),
    ))
}

/// Labels or annotations as a map; values that are not strings are left out.
fn string_map(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_owned())))
        .collect()
}
