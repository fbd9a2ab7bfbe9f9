//! The client's effective settings, and where each came from: a flag, an
//! environment variable, the config file
//! (`$XDG_CONFIG_HOME/collab/config.toml`, else `~/.config/collab/config.toml`;
//! `--config FILE` or `COLLAB_CONFIG` name another), or the default, in
//! that order of precedence. It exists so that a user can keep the server,
//! their name and how to get a token in one file instead of exporting
//! variables in every shell, and so that `collab config` can show what is
//! in force and why. The file holds no secret: the token comes from a
//! command (`token-command`) whose output is the token.

use std::fmt;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::ArgMatches;
use serde::Deserialize;

use crate::cli::{Cli, ColorChoice, DEFAULT_SERVER};
use crate::core::keymap::{Action, KeyChord};

/// The config file, as written. Keys are kebab-case, like the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileSettings {
    /// The server's base URL (`--server`).
    pub server: Option<String>,
    /// The display name (`--name`).
    pub name: Option<String>,
    /// A shell command whose standard output (trimmed) is the token, run
    /// only when neither `--token` nor `COLLAB_TOKEN` gives one.
    pub token_command: Option<String>,
    /// CA certificates to trust for an https:// server (`--ca-cert`).
    pub ca_cert: Option<PathBuf>,
    /// `auto`, `always` or `never` (`--color`).
    pub color: Option<ColorChoice>,
    /// The editor's look.
    pub theme: Option<Theme>,
    /// `false`: copies stay inside collab (as `--no-osc52`).
    pub osc52: Option<bool>,
    /// Keys for a few actions, added to their defaults.
    #[serde(default)]
    pub keys: Keys,
}

/// The editor's look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Theme {
    /// Syntax highlighting, colleagues in their colours.
    #[default]
    Default,
    /// No syntax highlighting; carets, selections and bars keep their
    /// colours.
    Plain,
}

impl fmt::Display for Theme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Theme::Default => "default",
            Theme::Plain => "plain",
        })
    }
}

/// The `[keys]` table: the actions whose keys people argue about, each
/// bound to one more key (`"ctrl-shift-z"`, `"alt-q"`, `"f9"`), which then
/// does that action instead of what it did before.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Keys {
    /// Quit (Ctrl-Q).
    pub quit: Option<String>,
    /// Save (Ctrl-S).
    pub save: Option<String>,
    /// Save as (F12, Alt-S).
    pub save_as: Option<String>,
    /// Undo (Ctrl-Z).
    pub undo: Option<String>,
    /// Redo (Ctrl-Y).
    pub redo: Option<String>,
    /// Find (Ctrl-F).
    pub find: Option<String>,
    /// Replace (Ctrl-R).
    pub replace: Option<String>,
    /// Go to line (Ctrl-L).
    pub go_to_line: Option<String>,
    /// Help (F1, Ctrl-G).
    pub help: Option<String>,
    /// The next colleague's caret (F2, Ctrl-N).
    pub next_colleague: Option<String>,
    /// Open a file (Ctrl-P).
    pub open_file: Option<String>,
    /// Delete a word back (Ctrl-W, Ctrl-Backspace).
    pub delete_word_back: Option<String>,
}

impl Keys {
    /// `(name, key, action)` for every key the table sets.
    fn entries(&self) -> Vec<(&'static str, &str, Action)> {
        let all = [
            ("quit", &self.quit, Action::Quit),
            ("save", &self.save, Action::Save),
            ("save-as", &self.save_as, Action::SaveAs),
            ("undo", &self.undo, Action::Undo),
            ("redo", &self.redo, Action::Redo),
            ("find", &self.find, Action::Find),
            ("replace", &self.replace, Action::Replace),
            ("go-to-line", &self.go_to_line, Action::GoToLine),
            ("help", &self.help, Action::Help),
            ("next-colleague", &self.next_colleague, Action::NextUser),
            ("open-file", &self.open_file, Action::OpenPicker),
            (
                "delete-word-back",
                &self.delete_word_back,
                Action::DeleteWordBack,
            ),
        ];
        all.into_iter()
            .filter_map(|(name, key, action)| key.as_deref().map(|k| (name, k, action)))
            .collect()
    }
}

/// Why the settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file cannot be read.
    #[error("cannot read the config file {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The file is not TOML of the expected shape (an unknown key, a wrong
    /// type); the message names the key and its line.
    #[error("config file {}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The token command failed or printed nothing.
    #[error("token-command `{command}` (from {}): {message}", path.display())]
    TokenCommand {
        /// The command.
        command: String,
        /// The file naming it.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// Where a setting's value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag.
    Flag(&'static str),
    /// An environment variable.
    Env(&'static str),
    /// The config file.
    File(PathBuf),
    /// The built-in default (with what it is made of, e.g. `$USER`).
    Default(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(flag) => write!(f, "flag {flag}"),
            Source::Env(var) => write!(f, "env {var}"),
            Source::File(path) => write!(f, "file {}", path.display()),
            Source::Default("") => f.write_str("default"),
            Source::Default(how) => write!(f, "default ({how})"),
        }
    }
}

/// A value and where it came from.
#[derive(Clone, Debug)]
pub struct Setting<T> {
    /// The value in force.
    pub value: T,
    /// Where it came from.
    pub source: Source,
}

/// Where the token comes from; the token itself is read only when needed.
#[derive(Clone, Debug)]
pub enum Token {
    /// None: the server must not require one.
    None,
    /// Given by `--token` or `COLLAB_TOKEN`.
    Given(String),
    /// The output of this command (from the config file).
    Command(String),
}

/// The config file in use.
#[derive(Clone, Debug)]
pub struct ConfigFile {
    /// Its path.
    pub path: PathBuf,
    /// Whether it exists (a missing default file is fine; a missing file
    /// named by `--config` is an error).
    pub found: bool,
    /// Why this path: `--config`, `COLLAB_CONFIG` or the default location.
    pub source: Source,
}

/// Everything resolved.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The config file, when there is a place for one.
    pub file: Option<ConfigFile>,
    /// The server's base URL.
    pub server: Setting<String>,
    /// The display name.
    pub name: Setting<String>,
    /// The token's origin.
    pub token: Setting<Token>,
    /// CA certificates for https://.
    pub ca_cert: Setting<Option<PathBuf>>,
    /// Colours: auto, always, never.
    pub color: Setting<ColorChoice>,
    /// The editor's look.
    pub theme: Setting<Theme>,
    /// Copies to the system clipboard through the terminal.
    pub osc52: Setting<bool>,
    /// Extra keys: `(action name, key, chord, action)`.
    pub keys: Vec<(String, String, KeyChord, Action)>,
}

/// The default config file: `$XDG_CONFIG_HOME/collab/config.toml`, else
/// `$HOME/.config/collab/config.toml`.
pub fn default_config_path(get: &impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let nonempty = |k: &str| get(k).filter(|v| !v.is_empty());
    nonempty("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| nonempty("HOME").map(|h| Path::new(&h).join(".config")))
        .map(|dir| dir.join("collab").join("config.toml"))
}

/// Reads and checks a config file's text.
pub fn parse_file(path: &Path, text: &str) -> Result<FileSettings, SettingsError> {
    toml::from_str(text).map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
        let at = line.map_or_else(String::new, |l| format!("line {l}: "));
        SettingsError::Invalid {
            path: path.to_owned(),
            message: format!("{at}{}", e.message()),
        }
    })
}

impl Settings {
    /// The settings for `cli` (parsed from `matches`), the environment
    /// (`get` reads a variable) and the config file.
    pub fn resolve(
        cli: &Cli,
        matches: &ArgMatches,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SettingsError> {
        let file = match (&cli.config, matches.value_source("config")) {
            (Some(path), Some(ValueSource::EnvVariable)) => {
                Some((path.clone(), Source::Env("COLLAB_CONFIG"), true))
            }
            (Some(path), _) => Some((path.clone(), Source::Flag("--config"), true)),
            (None, _) => default_config_path(&get).map(|p| (p, Source::Default(""), false)),
        };
        let (config, contents) = match file {
            None => (None, FileSettings::default()),
            Some((path, source, named)) => match std::fs::read_to_string(&path) {
                Ok(text) => {
                    let contents = parse_file(&path, &text)?;
                    let config = ConfigFile {
                        path,
                        found: true,
                        source,
                    };
                    (Some(config), contents)
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !named => {
                    let config = ConfigFile {
                        path,
                        found: false,
                        source,
                    };
                    (Some(config), FileSettings::default())
                }
                Err(error) => return Err(SettingsError::Read { path, error }),
            },
        };
        let file_source = || match &config {
            Some(c) => Source::File(c.path.clone()),
            None => Source::Default(""),
        };
        // A value clap has, from a flag or its variable.
        let given = |id: &str, flag: &'static str, env: &'static str| match matches.value_source(id)
        {
            Some(ValueSource::CommandLine) => Some(Source::Flag(flag)),
            Some(ValueSource::EnvVariable) => Some(Source::Env(env)),
            _ => None,
        };
        let pick = |given: Option<Source>, value: Option<String>, file: Option<String>| match (
            given, value, file,
        ) {
            (Some(source), Some(v), _) => Some(Setting { value: v, source }),
            (_, _, Some(v)) => Some(Setting {
                value: v,
                source: file_source(),
            }),
            _ => None,
        };

        let server = pick(
            given("server", "--server", "COLLAB_SERVER"),
            cli.server.clone(),
            contents.server.clone(),
        )
        .unwrap_or(Setting {
            value: DEFAULT_SERVER.to_owned(),
            source: Source::Default(""),
        });
        let name = pick(
            given("name", "--name", "COLLAB_NAME"),
            cli.name.clone(),
            contents.name.clone(),
        )
        .map(|s| Setting {
            value: s.value.trim().to_owned(),
            source: s.source,
        })
        .filter(|s| !s.value.is_empty())
        .unwrap_or_else(|| {
            let user = ["USER", "USERNAME"].into_iter().find_map(|k| {
                get(k)
                    .map(|v| v.trim().to_owned())
                    .filter(|v| !v.is_empty())
            });
            match user {
                Some(user) => Setting {
                    value: user,
                    source: Source::Default("$USER"),
                },
                None => Setting {
                    value: "anonymous".into(),
                    source: Source::Default(""),
                },
            }
        });
        let token = match (given("token", "--token", "COLLAB_TOKEN"), &cli.token) {
            (Some(source), Some(t)) => Setting {
                value: Token::Given(t.clone()),
                source,
            },
            _ => match &contents.token_command {
                Some(cmd) => Setting {
                    value: Token::Command(cmd.clone()),
                    source: file_source(),
                },
                None => Setting {
                    value: Token::None,
                    source: Source::Default(""),
                },
            },
        };
        let ca_cert = match (
            given("ca_cert", "--ca-cert", "COLLAB_CA_CERT"),
            &cli.ca_cert,
        ) {
            (Some(source), Some(p)) => Setting {
                value: Some(p.clone()),
                source,
            },
            _ => match &contents.ca_cert {
                Some(p) => Setting {
                    // `~/` is the home directory, as in a shell.
                    value: Some(match (p.strip_prefix("~"), get("HOME")) {
                        (Ok(rest), Some(home)) => Path::new(&home).join(rest),
                        _ => p.clone(),
                    }),
                    source: file_source(),
                },
                None => Setting {
                    value: None,
                    source: Source::Default("the system's roots"),
                },
            },
        };
        let color = match (given("color", "--color", "COLLAB_COLOR"), cli.color) {
            (Some(source), Some(c)) => Setting { value: c, source },
            _ => match contents.color {
                Some(c) => Setting {
                    value: c,
                    source: file_source(),
                },
                None => Setting {
                    value: ColorChoice::Auto,
                    source: Source::Default(""),
                },
            },
        };
        let theme = match contents.theme {
            Some(t) => Setting {
                value: t,
                source: file_source(),
            },
            None => Setting {
                value: Theme::Default,
                source: Source::Default(""),
            },
        };
        let osc52_env = get("COLLAB_OSC52").filter(|v| !v.trim().is_empty());
        let osc52 = if cli.no_osc52 {
            Setting {
                value: false,
                source: Source::Flag("--no-osc52"),
            }
        } else if let Some(v) = osc52_env {
            Setting {
                value: crate::terminal::osc52_enabled(false, Some(&v)),
                source: Source::Env("COLLAB_OSC52"),
            }
        } else if let Some(v) = contents.osc52 {
            Setting {
                value: v,
                source: file_source(),
            }
        } else {
            Setting {
                value: true,
                source: Source::Default(""),
            }
        };
        let mut keys = Vec::new();
        for (name, key, action) in contents.keys.entries() {
            let chord = KeyChord::parse(key).map_err(|e| SettingsError::Invalid {
                path: config.as_ref().map(|c| c.path.clone()).unwrap_or_default(),
                message: format!("keys.{name} = {key:?}: {e}"),
            })?;
            keys.push((name.to_owned(), key.to_owned(), chord, action));
        }
        Ok(Self {
            file: config,
            server,
            name,
            token,
            ca_cert,
            color,
            theme,
            osc52,
            keys,
        })
    }

    /// The token to send, running the token command when that is where it
    /// comes from.
    pub fn token(&self) -> Result<Option<String>, SettingsError> {
        match &self.token.value {
            Token::None => Ok(None),
            Token::Given(t) => Ok(Some(t.clone()).filter(|t| !t.is_empty())),
            Token::Command(command) => {
                let path = match &self.token.source {
                    Source::File(p) => p.clone(),
                    _ => PathBuf::new(),
                };
                let fail = |message: String| SettingsError::TokenCommand {
                    command: command.clone(),
                    path: path.clone(),
                    message,
                };
                let out = std::process::Command::new("sh")
                    .args(["-c", command])
                    .stdin(std::process::Stdio::null())
                    .stderr(std::process::Stdio::inherit())
                    .output()
                    .map_err(|e| fail(format!("cannot run it: {e}")))?;
                if !out.status.success() {
                    return Err(fail(format!("it failed ({})", out.status)));
                }
                let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                if token.is_empty() {
                    return Err(fail("it printed nothing".into()));
                }
                Ok(Some(token))
            }
        }
    }

    /// What `collab config` prints: each setting, its value (the token
    /// redacted) and where it came from.
    pub fn report(&self) -> String {
        let mut rows: Vec<(String, String, String)> = Vec::new();
        let mut row = |k: &str, v: String, s: String| rows.push((k.to_owned(), v, s));
        match &self.file {
            Some(f) => row(
                "config-file",
                f.path.display().to_string(),
                format!(
                    "{}{}",
                    match &f.source {
                        Source::Default(_) => "default location".to_owned(),
                        other => other.to_string(),
                    },
                    if f.found { "" } else { "; not there, not read" }
                ),
            ),
            None => row(
                "config-file",
                "(none)".into(),
                "neither XDG_CONFIG_HOME nor HOME is set".into(),
            ),
        }
        row(
            "server",
            self.server.value.clone(),
            self.server.source.to_string(),
        );
        row(
            "name",
            self.name.value.clone(),
            self.name.source.to_string(),
        );
        let token = match &self.token.value {
            Token::None => "(none)".to_owned(),
            Token::Given(_) => "(redacted)".to_owned(),
            Token::Command(cmd) => format!("(redacted; the output of `{cmd}`)"),
        };
        row("token", token, self.token.source.to_string());
        row(
            "ca-cert",
            self.ca_cert
                .value
                .as_ref()
                .map_or("(none)".into(), |p| p.display().to_string()),
            self.ca_cert.source.to_string(),
        );
        row(
            "color",
            self.color.value.to_string(),
            self.color.source.to_string(),
        );
        row(
            "theme",
            self.theme.value.to_string(),
            self.theme.source.to_string(),
        );
        row(
            "osc52",
            self.osc52.value.to_string(),
            self.osc52.source.to_string(),
        );
        let file = self.file.as_ref().map(|f| Source::File(f.path.clone()));
        for (name, key, _, _) in &self.keys {
            let source = file.clone().unwrap_or(Source::Default(""));
            row(&format!("keys.{name}"), key.clone(), source.to_string());
        }
        let width =
            |f: fn(&(String, String, String)) -> usize| rows.iter().map(f).max().unwrap_or(0);
        let (kw, vw) = (width(|r| r.0.len()), width(|r| r.1.chars().count()));
        let mut out = String::new();
        for (k, v, s) in &rows {
            out.push_str(&format!("{k:kw$}  {v:vw$}  {s}\n"));
        }
        out
    }

    /// The key overrides, for the editor.
    pub fn key_overrides(&self) -> Vec<(KeyChord, Action)> {
        self.keys.iter().map(|(_, _, c, a)| (*c, *a)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_errors_naming_the_file_and_key() {
        let path = Path::new("/home/u/.config/collab/config.toml");
        let err = parse_file(path, "server = \"http://h\"\nsever = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/home/u/.config/collab/config.toml"), "{err}");
        assert!(err.contains("sever"), "{err}");
        let err = parse_file(path, "[keys]\nqiut = \"ctrl-w\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("qiut"), "{err}");
        let err = parse_file(path, "theme = \"neon\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("neon"), "{err}");
        let ok = parse_file(
            path,
            "server = \"http://h:1\"\nname = \"ann\"\ntoken-command = \"pass x\"\n\
             color = \"never\"\ntheme = \"plain\"\nosc52 = false\n[keys]\nredo = \"ctrl-shift-z\"\n",
        )
        .unwrap();
        assert_eq!(ok.theme, Some(Theme::Plain));
        assert_eq!(ok.keys.entries().len(), 1);
    }

    #[test]
    fn the_default_file_follows_xdg() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            default_config_path(&env(&[("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")])),
            Some(PathBuf::from("/x/collab/config.toml"))
        );
        assert_eq!(
            default_config_path(&env(&[("XDG_CONFIG_HOME", ""), ("HOME", "/h")])),
            Some(PathBuf::from("/h/.config/collab/config.toml"))
        );
        assert_eq!(default_config_path(&env(&[])), None);
    }
}
