// Shared by the build scripts of `collab-server` and `collab` (each one's
// build.rs includes this file): sets `COLLAB_GIT_SUFFIX` for `--version`,
// " (a035380)" or " (a035380-dirty)" when built from a git checkout, empty
// otherwise (a source tarball, a container build without .git, no git
// installed): the version then reads like any release's, without a word of
// complaint.

use std::path::Path;
use std::process::Command;

/// Runs git with `args` in the package's directory; its trimmed stdout when
/// it succeeded.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn main() {
    let suffix = match git(&["rev-parse", "--short", "HEAD"]) {
        Some(commit) if !commit.is_empty() => {
            // A new commit moves HEAD (a detached checkout) or the branch's
            // ref (loose or packed), which is also when "-dirty" is looked at
            // again: edits alone do not rebuild the crates (the index is not
            // watched either, so `git add` costs no rebuild).
            let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
            if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
                watched.push(branch);
            }
            for name in watched {
                if let Some(path) = git(&["rev-parse", "--git-path", &name]) {
                    if Path::new(&path).exists() {
                        println!("cargo:rerun-if-changed={path}");
                    }
                }
            }
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            format!(" ({commit}{})", if dirty { "-dirty" } else { "" })
        }
        // Not a checkout: nothing to watch but this script.
        _ => {
            println!("cargo:rerun-if-changed=build.rs");
            String::new()
        }
    };
    println!("cargo:rustc-env=COLLAB_GIT_SUFFIX={suffix}");
}
