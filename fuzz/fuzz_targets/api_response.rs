//! The list and token answers as the client parses them: any bytes must give a value or an
//! error, never a panic.
#![no_main]

use infisical_materializer::api::model::{ListResponse, TokenResponse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(list) = serde_json::from_slice::<ListResponse>(data) {
        for secret in list.secrets {
            let _ = secret.is_hidden();
            let _ = secret.into_value();
        }
    }
    let _ = serde_json::from_slice::<TokenResponse>(data);
});
