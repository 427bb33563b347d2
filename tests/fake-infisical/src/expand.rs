//! Secret reference expansion (`expandSecretReferences=true`).
//!
//! `${KEY}` is the same environment and folder as the secret being expanded, `${env.KEY}` the
//! root of environment `env`, `${env.a.b.KEY}` folder `/a/b` of `env`. References expand
//! recursively up to depth 10; a reference to a missing (or empty) secret, or one that would
//! loop, is left as written.

use crate::world::World;

/// Deepest nesting of references that is still expanded.
pub(crate) const MAX_DEPTH: usize = 10;

/// Expands the references in `value`, a secret of folder `env:path`.
pub(crate) fn expand(world: &World, env: &str, path: &str, value: &str) -> String {
    let mut stack = Vec::new();
    expand_inner(world, env, path, value, 0, &mut stack)
}

fn expand_inner(
    world: &World,
    env: &str,
    path: &str,
    value: &str,
    depth: usize,
    stack: &mut Vec<(String, String, String)>,
) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
            .unwrap_or(after.len());
        if name_len == 0 || !after[name_len..].starts_with('}') {
            out.push_str("${");
            rest = after;
            continue;
        }
        let name = &after[..name_len];
        let literal = &rest[start..start + 2 + name_len + 1];
        rest = &after[name_len + 1..];
        match resolve(world, env, path, name, depth, stack) {
            Some(v) => out.push_str(&v),
            None => out.push_str(literal),
        }
    }
    out.push_str(rest);
    out
}

fn resolve(
    world: &World,
    env: &str,
    path: &str,
    name: &str,
    depth: usize,
    stack: &mut Vec<(String, String, String)>,
) -> Option<String> {
    if depth >= MAX_DEPTH {
        return None;
    }
    let parts: Vec<&str> = name.split('.').collect();
    let (ref_env, ref_path, key) = match parts.as_slice() {
        [key] => (env.to_string(), path.to_string(), key.to_string()),
        [ref_env, middle @ .., key] => {
            let folders: Vec<&str> = middle.iter().copied().filter(|s| !s.is_empty()).collect();
            let ref_path = if folders.is_empty() {
                "/".to_string()
            } else {
                format!("/{}", folders.join("/"))
            };
            (ref_env.to_string(), ref_path, key.to_string())
        }
        [] => return None,
    };
    let target = (ref_env.clone(), ref_path.clone(), key.clone());
    if stack.contains(&target) {
        return None;
    }
    let raw = world
        .folder(&ref_env, &ref_path)?
        .secrets
        .iter()
        .find(|s| s.key == key)
        .map(|s| s.value.clone())?;
    if raw.is_empty() {
        return None;
    }
    stack.push(target);
    let expanded = expand_inner(world, &ref_env, &ref_path, &raw, depth + 1, stack);
    stack.pop();
    Some(expanded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_references() {
        let w = World::sample();
        assert_eq!(
            expand(&w, "dev", "/", "postgres://${DB_HOST}:${DB_PORT}/app"),
            "postgres://db.internal.example:5432/app"
        );
        assert_eq!(
            expand(
                &w,
                "dev",
                "/app/db",
                "${DB_USER}:${DB_PASSWORD}@${dev.DB_HOST}:${dev.DB_PORT}"
            ),
            "app_user:s3cr3t-pw@db.internal.example:5432"
        );
        assert_eq!(
            expand(&w, "dev", "/app", "${dev.app.db.DB_USER}"),
            "app_user"
        );
        assert_eq!(
            expand(&w, "dev", "/", "${NOPE} ${ x } $ {A} ${"),
            "${NOPE} ${ x } $ {A} ${"
        );
        assert_eq!(expand(&w, "dev", "/", "${prod.DB_HOST}"), "db.prod.example");
    }

    #[test]
    fn cycles_and_depth() {
        let w = World::empty()
            .secret("dev", "/", "A", "a${B}")
            .secret("dev", "/", "B", "b${A}");
        assert_eq!(expand(&w, "dev", "/", "${A}"), "ab${A}");
        let mut w = World::empty().secret("dev", "/", "K0", "end");
        for i in 1..=12 {
            w = w.secret("dev", "/", &format!("K{i}"), &format!("${{K{}}}", i - 1));
        }
        assert_eq!(expand(&w, "dev", "/", "${K9}"), "end");
        assert_eq!(expand(&w, "dev", "/", "${K12}"), "${K2}");
    }
}
