//! How outputs are written (mode, owner, tmpfs policy) and what a write did: the words that
//! every writer of this module shares.

use std::str::FromStr;

use super::error::ParseError;

/// The owner given with `--owner UID[:GID]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    /// The user id.
    pub uid: u32,
    /// The group id; `None` keeps the group.
    pub gid: Option<u32>,
}

impl Owner {
    /// Whether a file with this uid and gid already has this owner.
    pub(super) fn matches(&self, uid: u32, gid: u32) -> bool {
        self.uid == uid && self.gid.is_none_or(|wanted| wanted == gid)
    }
}

impl FromStr for Owner {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let number = |part: &str| -> Option<u32> {
            // `u32::from_str` takes a leading '+', which is not a uid.
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            part.parse().ok()
        };
        let parsed = match text.split_once(':') {
            None => number(text).map(|uid| Owner { uid, gid: None }),
            Some((uid, gid)) => number(uid).zip(number(gid)).map(|(uid, gid)| Owner {
                uid,
                gid: Some(gid),
            }),
        };
        parsed.ok_or_else(|| ParseError {
            option: "--owner",
            value: text.to_owned(),
            expected: "UID or UID:GID (numbers)",
        })
    }
}

/// How files are written.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// Permission bits of the files written (`--file-mode`, default 0440).
    pub file_mode: u32,
    /// Owner of what is written (`--owner`).
    pub owner: Option<Owner>,
    /// Refuse targets that are not on tmpfs/ramfs (`--require-tmpfs`).
    pub require_tmpfs: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self {
            file_mode: 0o440,
            owner: None,
            require_tmpfs: false,
        }
    }
}

impl WriteOptions {
    /// The mode of the directories holding the files: the file mode with `x` added wherever
    /// `r` is set (0440 → 0550), so whoever may read the files may reach them.
    pub fn dir_mode(&self) -> u32 {
        let mode = self.file_mode & 0o7777;
        mode | ((mode & 0o444) >> 2)
    }

    /// The mode of directories this tool creates and keeps writing into (`--out-dir` itself,
    /// missing parents): [`Self::dir_mode`] plus full access for the owner, so later updates
    /// can still create and remove entries.
    pub fn parent_dir_mode(&self) -> u32 {
        self.dir_mode() | 0o700
    }
}

/// What a write did, so the sidecar knows whom to tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Every output already had this content; nothing was written.
    Unchanged,
    /// The outputs were empty or absent before; nobody can have read an older version.
    Created,
    /// At least one output replaced different content.
    Updated,
}

impl WriteOutcome {
    /// The outcome of two outputs written together: an update anywhere is an update.
    pub fn and(self, other: WriteOutcome) -> WriteOutcome {
        use WriteOutcome::{Created, Unchanged, Updated};
        match (self, other) {
            (Updated, _) | (_, Updated) => Updated,
            (Created, _) | (_, Created) => Created,
            (Unchanged, Unchanged) => Unchanged,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_parse() {
        assert_eq!(
            "1000".parse(),
            Ok(Owner {
                uid: 1000,
                gid: None
            })
        );
        assert_eq!(
            "0:65532".parse(),
            Ok(Owner {
                uid: 0,
                gid: Some(65532)
            })
        );
        for bad in ["", "app", "1:", ":1", "+1", "1:2:3", "1: 2", "4294967296"] {
            let error = bad.parse::<Owner>().unwrap_err();
            assert_eq!(error.option, "--owner", "{bad:?}");
        }
    }

    #[test]
    fn directories_get_search_bits_where_files_get_read_bits() {
        for (file, dir, parent) in [
            (0o440, 0o550, 0o750),
            (0o400, 0o500, 0o700),
            (0o644, 0o755, 0o755),
            (0o600, 0o700, 0o700),
            (0o004, 0o005, 0o705),
        ] {
            let options = WriteOptions {
                file_mode: file,
                ..WriteOptions::default()
            };
            assert_eq!(
                (options.dir_mode(), options.parent_dir_mode()),
                (dir, parent),
                "{file:o}"
            );
        }
    }

    #[test]
    fn an_update_anywhere_is_an_update() {
        use WriteOutcome::*;
        assert_eq!(Unchanged.and(Unchanged), Unchanged);
        assert_eq!(Unchanged.and(Created), Created);
        assert_eq!(Created.and(Updated), Updated);
        assert_eq!(Updated.and(Unchanged), Updated);
    }
}
