//! Key bindings: a TOML table from command names to keys and a description; a user file
//! overrides any binding or field of the default (keymaps/default.toml). The help overlay is
//! generated from it.

use std::collections::BTreeMap;
use std::path::Path;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::Deserialize;

/// The default keymap, embedded.
pub const DEFAULT: &str = include_str!("../../keymaps/default.toml");

/// Everything a key can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Command {
    Quit,
    Help,
    Messages,
    FocusNext,
    Up,
    Down,
    Open,
    Search,
    Play,
    SeekBack,
    SeekForward,
    Replay,
    Spectrogram,
    Gold,
    Generate,
    Cancel,
    Truncate,
    Edit,
    Mistake,
    MistakeRules,
    MistakeModel,
    Filler,
    Paraphrase,
    Revert,
    NoCot,
    Annotate,
    Export,
    ScreenInspect,
    ScreenSweep,
    ScreenAggregate,
    AggregateSeries,
    Presenter,
    Mouse,
    Theme,
    SwitchModel,
    RegionStart,
    RegionEnd,
    MaskSilence,
    MaskNoise,
    NoiseMore,
    NoiseLess,
    Hint,
    ClearAudio,
    AudioAb,
    AskHeld,
    AskRegen,
    AudioVariant,
    AudioSweep,
}

/// A key with modifiers, normalised (a shifted character is the character itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    /// The key.
    pub code: KeyCode,
    /// Ctrl and Alt only.
    pub mods: KeyModifiers,
}

impl Key {
    /// The normalised form of a terminal key event.
    pub fn from_event(e: &KeyEvent) -> Key {
        let mut mods = e.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT);
        let code = match e.code {
            KeyCode::Char(c) if mods.contains(KeyModifiers::CONTROL) => {
                KeyCode::Char(c.to_ascii_lowercase())
            }
            KeyCode::BackTab => {
                mods = KeyModifiers::NONE;
                KeyCode::BackTab
            }
            c => c,
        };
        Key { code, mods }
    }

    /// Parses `q`, `M`, `ctrl-c`, `alt-x`, `enter`, `f5`, ...
    pub fn parse(spec: &str) -> Result<Key, String> {
        let mut mods = KeyModifiers::NONE;
        let mut rest = spec;
        loop {
            if let Some(r) = rest.strip_prefix("ctrl-") {
                mods |= KeyModifiers::CONTROL;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("alt-") {
                mods |= KeyModifiers::ALT;
                rest = r;
            } else {
                break;
            }
        }
        let code = match rest {
            "enter" => KeyCode::Enter,
            "esc" => KeyCode::Esc,
            "tab" => KeyCode::Tab,
            "backtab" => KeyCode::BackTab,
            "space" => KeyCode::Char(' '),
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "pageup" => KeyCode::PageUp,
            "pagedown" => KeyCode::PageDown,
            "backspace" => KeyCode::Backspace,
            "delete" => KeyCode::Delete,
            f if f.len() > 1 && f.starts_with('f') && f[1..].parse::<u8>().is_ok() => {
                KeyCode::F(f[1..].parse().unwrap_or(1))
            }
            s if s.chars().count() == 1 => {
                let c = s.chars().next().unwrap_or(' ');
                if mods.contains(KeyModifiers::CONTROL) {
                    KeyCode::Char(c.to_ascii_lowercase())
                } else {
                    KeyCode::Char(c)
                }
            }
            _ => return Err(format!("'{spec}' is not a key; use a character, ctrl-x, alt-x, enter, esc, tab, space, up, down, left, right, home, end, pageup, pagedown, backspace, delete or f1..f12")),
        };
        Ok(Key { code, mods })
    }

    /// The key as the help overlay shows it.
    pub fn label(&self) -> String {
        let mut s = String::new();
        if self.mods.contains(KeyModifiers::CONTROL) {
            s.push_str("Ctrl-");
        }
        if self.mods.contains(KeyModifiers::ALT) {
            s.push_str("Alt-");
        }
        match self.code {
            KeyCode::Char(' ') => s.push_str("Space"),
            KeyCode::Char(c) => s.push(c),
            KeyCode::Enter => s.push_str("Enter"),
            KeyCode::Esc => s.push_str("Esc"),
            KeyCode::Tab => s.push_str("Tab"),
            KeyCode::BackTab => s.push_str("S-Tab"),
            KeyCode::Up => s.push('↑'),
            KeyCode::Down => s.push('↓'),
            KeyCode::Left => s.push('←'),
            KeyCode::Right => s.push('→'),
            KeyCode::F(n) => s.push_str(&format!("F{n}")),
            other => s.push_str(&format!("{other:?}")),
        }
        s
    }
}

/// One binding: keys and what the help overlay says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The command.
    pub command: Command,
    /// Keys that trigger it.
    pub keys: Vec<Key>,
    /// One line for the help overlay.
    pub desc: String,
}

/// All bindings, in the default file's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keymap {
    /// The bindings.
    pub bindings: Vec<Binding>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeymapFile {
    #[serde(default)]
    keys: BTreeMap<String, BindingFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BindingFile {
    keys: Option<Vec<String>>,
    desc: Option<String>,
}

impl Default for Keymap {
    fn default() -> Self {
        Keymap::from_toml_over(
            &Keymap {
                bindings: Vec::new(),
            },
            DEFAULT,
            "default keymap",
        )
        .expect("the default keymap parses")
    }
}

impl Keymap {
    /// Reads a user keymap file over the default.
    pub fn load(path: &Path) -> Result<Keymap, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read keymap {}: {e}", path.display()))?;
        Keymap::from_toml_over(&Keymap::default(), &text, &path.display().to_string())
    }

    /// Applies a keymap TOML over `base`; `origin` names the text in errors.
    pub fn from_toml_over(base: &Keymap, text: &str, origin: &str) -> Result<Keymap, String> {
        let file: KeymapFile = toml::from_str(text).map_err(|e| format!("keymap {origin}: {e}"))?;
        let mut out = base.clone();
        // The default file's order is its line order; toml tables are sorted, so order new
        // bindings by where their name appears in the text.
        let mut entries: Vec<(String, BindingFile)> = file.keys.into_iter().collect();
        entries.sort_by_key(|(name, _)| text.find(&format!("\n{name} ")).unwrap_or(usize::MAX));
        for (name, b) in entries {
            let command: Command = serde_json::from_value(serde_json::Value::String(name.clone()))
                .map_err(|_| format!("keymap {origin}: unknown command '{name}'"))?;
            let keys = match b.keys {
                Some(ks) => Some(
                    ks.iter()
                        .map(|k| Key::parse(k).map_err(|e| format!("keymap {origin}, {name}: {e}")))
                        .collect::<Result<Vec<_>, _>>()?,
                ),
                None => None,
            };
            match out.bindings.iter_mut().find(|x| x.command == command) {
                Some(existing) => {
                    if let Some(k) = keys {
                        existing.keys = k;
                    }
                    if let Some(d) = b.desc {
                        existing.desc = d;
                    }
                }
                None => out.bindings.push(Binding {
                    command,
                    keys: keys.unwrap_or_default(),
                    desc: b.desc.unwrap_or_else(|| name.replace('_', " ")),
                }),
            }
        }
        Ok(out)
    }

    /// The command bound to a key event.
    pub fn lookup(&self, e: &KeyEvent) -> Option<Command> {
        let k = Key::from_event(e);
        self.bindings
            .iter()
            .find(|b| b.keys.contains(&k))
            .map(|b| b.command)
    }

    /// The first key of a command, as shown in hints.
    pub fn key_of(&self, c: Command) -> String {
        self.bindings
            .iter()
            .find(|b| b.command == c)
            .and_then(|b| b.keys.first())
            .map(Key::label)
            .unwrap_or_else(|| "-".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_binds_every_command_once_in_file_order() {
        let k = Keymap::default();
        assert_eq!(k.bindings.first().unwrap().command, Command::Quit);
        assert!(k.bindings.len() >= 30);
        let ev = KeyEvent::new(KeyCode::Char('M'), KeyModifiers::SHIFT);
        assert_eq!(k.lookup(&ev), Some(Command::MistakeRules));
        let ev = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(k.lookup(&ev), Some(Command::Quit));
    }

    #[test]
    fn user_file_overrides_keys_keeps_desc() {
        let k = Keymap::from_toml_over(
            &Keymap::default(),
            "[keys]\ntruncate = { keys = [\"ctrl-t\"] }\n",
            "user",
        )
        .unwrap();
        let b = k
            .bindings
            .iter()
            .find(|b| b.command == Command::Truncate)
            .unwrap();
        assert_eq!(b.keys, vec![Key::parse("ctrl-t").unwrap()]);
        assert!(b.desc.contains("Truncate"));
    }

    #[test]
    fn unknown_command_and_key_are_named() {
        let e =
            Keymap::from_toml_over(&Keymap::default(), "[keys]\nfly = {}\n", "u.toml").unwrap_err();
        assert!(e.contains("fly"), "{e}");
        let e = Keymap::from_toml_over(
            &Keymap::default(),
            "[keys]\nquit = { keys = [\"hyper-q\"] }\n",
            "u.toml",
        )
        .unwrap_err();
        assert!(e.contains("hyper-q"), "{e}");
    }
}
