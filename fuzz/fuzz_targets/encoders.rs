//! The output encoders: any keys and values, in every format, must give an encoding or a
//! clear refusal, never a panic; and a JSON encoding must parse back to the same pairs.
#![no_main]

use infisical_materializer::secrets::{SecretSet, SecretValue};
use infisical_materializer::sink::format::{encode, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut secrets = SecretSet::new();
    let mut pairs = Vec::new();
    for line in text.split('\n').take(16) {
        let (key, value) = line.split_once('\u{1}').unwrap_or((line, ""));
        secrets.insert(key.to_owned(), SecretValue::from(value));
        pairs.push((key.to_owned(), value.to_owned()));
    }
    for format in [Format::Dotenv, Format::Shell, Format::Json, Format::Yaml] {
        let Ok(encoded) = encode(format, &secrets) else {
            continue;
        };
        if format == Format::Json {
            let parsed: serde_json::Map<String, serde_json::Value> =
                serde_json::from_slice(&encoded).expect("the JSON encoding parses");
            for (key, value) in &pairs {
                let last = pairs.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v);
                if Some(value) == last {
                    assert_eq!(
                        parsed.get(key).and_then(|v| v.as_str()),
                        Some(value.as_str())
                    );
                }
            }
        }
    }
});
