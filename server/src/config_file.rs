//! `collab-server --config FILE`: a TOML file whose keys are the serving
//! flags' long names. It exists so that a deployment can keep its settings in
//! one file instead of a page of flags or variables, without a second
//! definition of the settings: each key the file sets, and that neither a
//! flag nor an environment variable set, is handed to clap as if it were a
//! flag (`--key=value`), so the file's values are parsed and checked exactly
//! as flags are, and the precedence is flag > environment > file > default.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::FromArgMatches;

use crate::cli::{command, Args};

/// Why the command line, with its config file, cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The command line itself (also `--help` and `--version`, which clap
    /// prints and exits on).
    #[error(transparent)]
    Clap(#[from] clap::Error),
    /// The file cannot be read.
    #[error("cannot read the config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not TOML.
    #[error("{}: not valid TOML: {message}", path.display())]
    Toml {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// A key that is no flag, or a value of a kind no flag takes.
    #[error("{}: {message}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the key.
        message: String,
    },
    /// A value clap refused (`port = "high"`).
    #[error("{}: {}", path.display(), first_line(source))]
    Value {
        /// The file.
        path: PathBuf,
        /// What clap said, naming the flag.
        source: clap::Error,
    },
}

/// clap's message without its "For more information" footer.
fn first_line(e: &clap::Error) -> String {
    e.to_string().lines().next().unwrap_or_default().to_owned()
}

/// Parses `argv` (program name first), reading the `--config` file (or
/// `COLLAB_SERVER_CONFIG`) when one is named and no subcommand is given.
pub fn parse_from<I, T>(argv: I) -> Result<Args, ParseError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
    let matches = command().try_get_matches_from(&argv)?;
    let file = matches.get_one::<PathBuf>("config").cloned();
    let Some(path) = file.filter(|_| matches.subcommand().is_none()) else {
        return Ok(Args::from_arg_matches(&matches)?);
    };
    let text = std::fs::read_to_string(&path).map_err(|source| ParseError::Read {
        path: path.clone(),
        source,
    })?;
    let extra = file_flags(&path, &text, |id| {
        matches!(
            matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    })?;
    let mut all = argv;
    all.extend(extra);
    let matches = command()
        .try_get_matches_from(&all)
        .map_err(|source| ParseError::Value {
            path: path.clone(),
            source,
        })?;
    Args::from_arg_matches(&matches).map_err(|source| ParseError::Value { path, source })
}

/// The flags `text` (the file at `path`) stands for, leaving out those
/// `given` says a flag or a variable set already.
fn file_flags(
    path: &Path,
    text: &str,
    given: impl Fn(&str) -> bool,
) -> Result<Vec<OsString>, ParseError> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ParseError::Toml {
            path: path.to_owned(),
            message: e.message().to_owned(),
        })?;
    let cmd = command();
    let key_error = |message: String| ParseError::Key {
        path: path.to_owned(),
        message,
    };
    let mut flags = Vec::new();
    for (key, value) in &table {
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_long() == Some(key) && !matches!(key.as_str(), "help" | "version"));
        let Some(arg) = arg else {
            let kebab = key.replace('_', "-");
            let hint = if cmd.get_arguments().any(|a| a.get_long() == Some(&kebab)) {
                format!(" (did you mean `{kebab}`? keys are the flags' names)")
            } else {
                " (keys are the long flags of `collab-server --help`, without the dashes)"
                    .to_owned()
            };
            return Err(key_error(format!("unknown key `{key}`{hint}")));
        };
        if key == "config" {
            return Err(key_error(
                "`config` cannot be set in a config file".to_owned(),
            ));
        }
        if given(arg.get_id().as_str()) {
            continue;
        }
        let takes_value = arg.get_action().takes_values();
        let items: Vec<&toml::Value> = match value {
            toml::Value::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        for item in items {
            let text = match item {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) if !takes_value => {
                    if *b {
                        flags.push(OsString::from(format!("--{key}")));
                    }
                    continue;
                }
                toml::Value::Boolean(b) => b.to_string(),
                _ => {
                    return Err(key_error(format!(
                        "`{key}` must be a string, a number, a boolean or a list of them"
                    )))
                }
            };
            if !takes_value {
                return Err(key_error(format!("`{key}` must be true or false")));
            }
            flags.push(OsString::from(format!("--{key}={text}")));
        }
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!(
            "collab-server-config-{}-{name}.toml",
            std::process::id()
        ));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_flag_beats_the_file_and_the_file_beats_the_default() {
        let path = write(
            "precedence",
            "port = 9001\nhost = \"0.0.0.0\"\nredis-cluster = true\n\
             trusted-proxy = [\"10.0.0.0/8\", \"192.168.1.1\"]\nrate-per-sec = 12.5\n",
        );
        let config = path.to_str().unwrap();
        let args = parse_from(["collab-server", "--config", config, "--port", "7000"]).unwrap();
        assert_eq!(args.serve.port, 7000, "the flag");
        assert_eq!(args.serve.host, "0.0.0.0", "the file");
        assert!(args.serve.redis_cluster);
        assert_eq!(args.serve.trusted_proxies, ["10.0.0.0/8", "192.168.1.1"]);
        assert_eq!(args.serve.rate_per_sec, 12.5);
        assert_eq!(args.serve.max_docs, 10_000, "the default");
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_file_and_the_key() {
        let path = write("unknown", "max_docs = 5\n");
        let err = parse_from(["collab-server", "--config", path.to_str().unwrap()])
            .unwrap_err()
            .to_string();
        assert!(err.contains(path.to_str().unwrap()), "{err}");
        assert!(err.contains("unknown key `max_docs`"), "{err}");
        assert!(err.contains("did you mean `max-docs`"), "{err}");

        let path = write("value", "port = \"high\"\n");
        let err = parse_from(["collab-server", "--config", path.to_str().unwrap()])
            .unwrap_err()
            .to_string();
        assert!(err.contains(path.to_str().unwrap()), "{err}");
        assert!(err.contains("--port"), "{err}");

        let path = write("toml", "port = \n");
        let err = parse_from(["collab-server", "--config", path.to_str().unwrap()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("not valid TOML"), "{err}");

        let err = parse_from(["collab-server", "--config", "/nonexistent/collab.toml"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot read the config file"), "{err}");
    }
}
