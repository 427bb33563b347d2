//! The command's environment: the inherited variables less the wrapper's own, plus the secrets.
//! Values are wiped from memory when it is dropped.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStringExt;

use zeroize::Zeroize;

use super::error::ExecError;
use crate::cli::CONSUMED_ENV_VARS;
use crate::secrets::{check_env_keys, InvalidKeys, SecretSet};

/// How the child's environment is made from the inherited one and the secrets.
pub struct EnvRecipe {
    /// This process's environment as it started.
    pub inherited: Vec<(OsString, OsString)>,
    /// What to do with keys that cannot be env names.
    pub policy: InvalidKeys,
    /// Inherited variables win over secrets of the same name.
    pub preserve_env: bool,
    /// Variables of [`CONSUMED_ENV_VARS`] passed on anyway.
    pub keep: Vec<String>,
}

impl EnvRecipe {
    /// The child's environment for these secrets. Fails (exit 65) on a key that is not an env
    /// name (unless skipped) and on a value holding a NUL byte, naming the key only.
    pub fn build(&self, secrets: SecretSet) -> Result<ChildEnv, ExecError> {
        let secrets = check_env_keys(&secrets, self.policy)?;
        if let Some((key, _)) = secrets
            .iter()
            .find(|(_, value)| value.expose().contains('\0'))
        {
            return Err(ExecError::NulInSecret {
                key: key.to_owned(),
            });
        }
        let removed = |name: &OsStr| {
            CONSUMED_ENV_VARS
                .iter()
                .any(|consumed| OsStr::new(consumed) == name)
                && !self.keep.iter().any(|kept| OsStr::new(kept) == name)
        };
        let mut vars: Vec<(OsString, OsString)> = self
            .inherited
            .iter()
            .filter(|(name, _)| !removed(name))
            .cloned()
            .collect();
        let mut position: HashMap<OsString, usize> = vars
            .iter()
            .enumerate()
            .map(|(index, (name, _))| (name.clone(), index))
            .collect();
        // What the child actually gets: a secret shadowed by an inherited variable
        // (--preserve-env) changes nothing for it, so it must not cause a restart either.
        let mut applied = SecretSet::new();
        for (key, secret) in secrets.iter() {
            let value = OsString::from(secret.expose());
            match position.get(OsStr::new(key)) {
                Some(_) if self.preserve_env => {
                    wipe(value);
                    continue;
                }
                Some(&index) => {
                    let old = std::mem::replace(&mut vars[index].1, value);
                    wipe(old);
                }
                None => {
                    position.insert(key.into(), vars.len());
                    vars.push((key.into(), value));
                }
            }
            applied.insert(key.to_owned(), secret.clone());
        }
        Ok(ChildEnv {
            vars,
            secret_count: applied.len(),
            hash: applied.content_hash(),
        })
    }
}

/// The child's environment. Values are wiped from memory on drop.
pub struct ChildEnv {
    vars: Vec<(OsString, OsString)>,
    secret_count: usize,
    hash: [u8; 32],
}

impl ChildEnv {
    /// The variables, in order.
    pub fn vars(&self) -> impl Iterator<Item = (&OsStr, &OsStr)> {
        self.vars
            .iter()
            .map(|(k, v)| (k.as_os_str(), v.as_os_str()))
    }

    /// How many secrets it carries (for logs); secrets shadowed by `--preserve-env` not counted.
    pub fn secret_count(&self) -> usize {
        self.secret_count
    }

    /// A hash of the secrets it carries: equal hashes mean no restart is needed.
    pub fn secrets_hash(&self) -> [u8; 32] {
        self.hash
    }
}

impl Drop for ChildEnv {
    fn drop(&mut self) {
        for (_, value) in self.vars.drain(..) {
            wipe(value);
        }
    }
}

fn wipe(value: OsString) {
    value.into_vec().zeroize();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::exit;
    use crate::secrets::SecretValue;

    fn secrets(pairs: &[(&str, &str)]) -> SecretSet {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), SecretValue::from(*v)))
            .collect()
    }

    fn recipe(inherited: &[(&str, &str)]) -> EnvRecipe {
        EnvRecipe {
            inherited: inherited
                .iter()
                .map(|(k, v)| (OsString::from(k), OsString::from(v)))
                .collect(),
            policy: InvalidKeys::Fail,
            preserve_env: false,
            keep: Vec::new(),
        }
    }

    fn vars(env: &ChildEnv) -> Vec<(String, String)> {
        env.vars()
            .map(|(k, v)| (k.to_string_lossy().into(), v.to_string_lossy().into()))
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn secrets_override_inherited_unless_preserved() {
        let inherited = [("HOME", "/root"), ("API_KEY", "inherited")];
        let set = secrets(&[("API_KEY", "secret"), ("NEW", "n")]);
        let env = recipe(&inherited).build(set.clone()).unwrap();
        assert_eq!(
            vars(&env),
            pairs(&[("HOME", "/root"), ("API_KEY", "secret"), ("NEW", "n")])
        );
        let mut preserving = recipe(&inherited);
        preserving.preserve_env = true;
        let env = preserving.build(set).unwrap();
        assert_eq!(
            vars(&env),
            pairs(&[("HOME", "/root"), ("API_KEY", "inherited"), ("NEW", "n")])
        );
        assert_eq!(env.secret_count(), 1, "the shadowed API_KEY is not passed");
    }

    #[test]
    fn the_wrappers_own_variables_are_removed_unless_kept() {
        let inherited = [
            ("INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET", "s"),
            ("INFISICAL_TOKEN", "t"),
            ("INFISICAL_PROJECT_ID", "p"),
            ("INFISICAL_OTHER", "not ours"),
            ("PATH", "/bin"),
        ];
        let mut keeping = recipe(&inherited);
        keeping.keep = vec!["INFISICAL_PROJECT_ID".into()];
        let env = keeping.build(SecretSet::new()).unwrap();
        assert_eq!(
            vars(&env),
            pairs(&[
                ("INFISICAL_PROJECT_ID", "p"),
                ("INFISICAL_OTHER", "not ours"),
                ("PATH", "/bin")
            ])
        );
    }

    #[test]
    fn a_secret_may_reuse_a_removed_name() {
        let env = recipe(&[("INFISICAL_TOKEN", "wrapper's")])
            .build(secrets(&[("INFISICAL_TOKEN", "the app's own")]))
            .unwrap();
        assert_eq!(vars(&env), pairs(&[("INFISICAL_TOKEN", "the app's own")]));
    }

    #[test]
    fn invalid_keys_fail_or_are_skipped_and_nul_values_fail_without_the_value() {
        let set = secrets(&[("GOOD", "1"), ("bad-key", "2")]);
        let error = recipe(&[]).build(set.clone()).err().unwrap();
        assert_eq!(error.exit_code(), exit::DATA);
        assert!(error.to_string().contains("bad-key"), "{error}");
        let mut skipping = recipe(&[]);
        skipping.policy = InvalidKeys::Skip;
        assert_eq!(vars(&skipping.build(set).unwrap()), pairs(&[("GOOD", "1")]));

        let error = recipe(&[])
            .build(secrets(&[("TOKEN", "abc\0hidden-part")]))
            .err()
            .unwrap();
        assert_eq!(error.exit_code(), exit::DATA);
        assert!(error.to_string().contains("\"TOKEN\""), "{error}");
        assert!(!error.to_string().contains("hidden-part"), "{error}");
    }

    #[test]
    fn the_hash_follows_the_secrets_not_the_environment() {
        let set = secrets(&[("A", "1")]);
        let first = recipe(&[("X", "1")]).build(set.clone()).unwrap();
        let second = recipe(&[("X", "2")]).build(set).unwrap();
        assert_eq!(first.secrets_hash(), second.secrets_hash());
        let changed = recipe(&[]).build(secrets(&[("A", "2")])).unwrap();
        assert_ne!(first.secrets_hash(), changed.secrets_hash());

        // A secret hidden by an inherited variable does not count.
        let mut preserving = recipe(&[("A", "inherited")]);
        preserving.preserve_env = true;
        let before = preserving
            .build(secrets(&[("A", "1"), ("B", "b")]))
            .unwrap();
        let after = preserving
            .build(secrets(&[("A", "2"), ("B", "b")]))
            .unwrap();
        assert_eq!(before.secrets_hash(), after.secrets_hash());
        assert_eq!(before.secret_count(), 1);
    }
}
