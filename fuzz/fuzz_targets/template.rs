//! The template loader and renderer: any template text, rendered with a few secrets, must give
//! output or an error naming the template and line, never a panic.
#![no_main]

use infisical_materializer::secrets::{SecretSet, SecretValue};
use infisical_materializer::sink::template::Template;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(template) = Template::parse("fuzz.tmpl", source) else {
        return;
    };
    let mut secrets = SecretSet::new();
    secrets.insert("API_KEY".into(), SecretValue::from("v4lue"));
    secrets.insert("JSON".into(), SecretValue::from(r#"{"a":[1,2]}"#));
    secrets.insert("B64".into(), SecretValue::from("aGVsbG8="));
    let _ = template.render(&secrets);
});
