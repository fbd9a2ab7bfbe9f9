//! Puts the git commit into `--version` (see build-support/git_version.rs).

include!("../build-support/git_version.rs");
