//! The configuration file's first stage (YAML to the raw schema): any text must give a
//! configuration or an error naming where, never a panic.
#![no_main]

use infisical_materializer::config::file::RawConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(error) = RawConfig::parse(text, "fuzz.yaml") {
            let _ = error.to_string();
        }
    }
});
