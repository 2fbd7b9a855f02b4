//! Which face serves the person: the window when a display is there and
//! nobody types answers into standard input, else the terminal.
//!
//! Standard input that is a terminal or absent (closed, or `/dev/null`, as
//! when started from a desktop menu) leaves the choice to the display; a
//! pipe or a file means answers are typed in by a program, so the terminal
//! stays, exactly as before the window existed.

use std::io::IsTerminal;

/// What the command line asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FaceChoice {
    /// The window when it can be shown, else the terminal.
    #[default]
    Auto,
    /// The window, or an error.
    Window,
    /// The terminal, even with a display.
    Terminal,
}

impl FaceChoice {
    /// From `--window` and `--terminal` (which the command line keeps apart).
    pub fn from_flags(window: bool, terminal: bool) -> FaceChoice {
        match (window, terminal) {
            (true, _) => FaceChoice::Window,
            (_, true) => FaceChoice::Terminal,
            _ => FaceChoice::Auto,
        }
    }

    /// Whether to open the window, given what this process sees.
    pub fn wants_window(self, seen: &Surroundings) -> bool {
        match self {
            FaceChoice::Window => true,
            FaceChoice::Terminal => false,
            FaceChoice::Auto => seen.display && seen.stdin != Stdin::Piped,
        }
    }
}

/// What standard input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdin {
    Terminal,
    /// Closed, or `/dev/null`.
    Absent,
    /// A pipe or a file: a program types the answers.
    Piped,
}

/// What decides the automatic choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Surroundings {
    /// `DISPLAY` or `WAYLAND_DISPLAY` is set.
    pub display: bool,
    pub stdin: Stdin,
}

impl Surroundings {
    /// This process's.
    pub fn here() -> Surroundings {
        let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
        Surroundings {
            display: set("DISPLAY") || set("WAYLAND_DISPLAY"),
            stdin: stdin_kind(),
        }
    }
}

fn stdin_kind() -> Stdin {
    if std::io::stdin().is_terminal() {
        return Stdin::Terminal;
    }
    if crate::platform::stdin_is_absent() {
        Stdin::Absent
    } else {
        // Anything else, or a system that cannot tell: as before the window.
        Stdin::Piped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piped_answers_keep_the_terminal_even_with_a_display() {
        let seen = |display, stdin| Surroundings { display, stdin };
        let auto = FaceChoice::Auto;
        assert!(!auto.wants_window(&seen(true, Stdin::Piped)));
        assert!(!auto.wants_window(&seen(false, Stdin::Terminal)));
        assert!(!auto.wants_window(&seen(false, Stdin::Absent)));
        assert!(auto.wants_window(&seen(true, Stdin::Terminal)));
        assert!(auto.wants_window(&seen(true, Stdin::Absent)));
        assert!(FaceChoice::Window.wants_window(&seen(false, Stdin::Piped)));
        assert!(!FaceChoice::Terminal.wants_window(&seen(true, Stdin::Terminal)));
    }
}
