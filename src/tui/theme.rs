//! Colours and emphasis, in one place. With NO_COLOR set, only bold, dim and reverse are used.

use ratatui::style::{Color, Modifier, Style};
use std::sync::OnceLock;

/// Colour on or off whatever NO_COLOR says: the config file's `theme`, set once at start-up.
static COLOR: OnceLock<bool> = OnceLock::new();

/// Turn colour on or off for the whole run (the config file's `theme = "color"` or `"mono"`;
/// `"auto"` sets nothing). Once only: false if it was set already.
pub fn set_color(color: bool) -> bool {
    // crossterm drops colour sequences under NO_COLOR on its own; the user's choice wins.
    ratatui::crossterm::style::Colored::set_ansi_color_disabled(!color);
    COLOR.set(color).is_ok()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    /// Colour unless the NO_COLOR convention (https://no-color.org) asks for none, or the
    /// config file's `theme` decided (a user's configuration wins over NO_COLOR, as the
    /// convention says).
    pub fn from_env() -> Self {
        Theme {
            color: COLOR
                .get()
                .copied()
                .unwrap_or_else(|| std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())),
        }
    }

    fn fg(self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }

    pub fn base(self) -> Style {
        Style::new()
    }

    pub fn dim(self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new().add_modifier(Modifier::DIM)
        }
    }

    pub fn title(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn header(self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }

    pub fn selected(self) -> Style {
        if self.color {
            Style::new()
                .bg(Color::Blue)
                .fg(Color::White)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::REVERSED)
        }
    }

    /// The selection in a pane that does not have the focus.
    pub fn selected_unfocused(self) -> Style {
        if self.color {
            Style::new().bg(Color::DarkGray).fg(Color::White)
        } else {
            Style::new().add_modifier(Modifier::UNDERLINED)
        }
    }

    /// A rule that counted packets since the last refresh.
    pub fn hit(self) -> Style {
        self.fg(Color::LightGreen).add_modifier(Modifier::BOLD)
    }

    /// A conntrack entry that just appeared.
    pub fn fresh(self) -> Style {
        self.hit()
    }

    /// A conntrack entry just destroyed, fading out.
    pub fn gone(self) -> Style {
        self.dim().add_modifier(Modifier::CROSSED_OUT)
    }

    /// A state that just changed.
    pub fn flash(self) -> Style {
        if self.color {
            Style::new()
                .bg(Color::Yellow)
                .fg(Color::Black)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::REVERSED)
        }
    }

    pub fn ok(self) -> Style {
        self.fg(Color::Green)
    }

    /// A fill gauge: green, then yellow from 80 %, red from 95 %.
    pub fn gauge(self, ratio: f64) -> Style {
        if ratio >= 0.95 {
            self.error()
        } else if ratio >= 0.80 {
            self.warning().add_modifier(Modifier::BOLD)
        } else {
            self.ok()
        }
    }

    /// A line a diff adds, and one it removes (their `+`/`-` says it without colour).
    pub fn added(self) -> Style {
        self.fg(Color::Green)
    }

    pub fn removed(self) -> Style {
        self.fg(Color::Red)
    }

    /// A rule the staging added or changed, on the Rules screen.
    pub fn staged(self) -> Style {
        if self.color {
            Style::new().fg(Color::LightYellow)
        } else {
            Style::new().add_modifier(Modifier::ITALIC)
        }
    }

    /// A rule the staging deletes, still shown where it stood on the Rules screen.
    pub fn staged_deleted(self) -> Style {
        self.removed().add_modifier(Modifier::CROSSED_OUT)
    }

    /// The part of a rule the Rules filter matched.
    pub fn filter_match(self) -> Style {
        if self.color {
            Style::new()
                .fg(Color::Black)
                .bg(Color::Yellow)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::REVERSED)
        }
    }

    pub fn error(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    pub fn warning(self) -> Style {
        self.fg(Color::Yellow)
    }

    pub fn key(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn border(self) -> Style {
        self.fg(Color::DarkGray)
    }

    pub fn border_focused(self) -> Style {
        self.fg(Color::Cyan)
    }

    /// Colour of a target: accept green, drop/reject red, jumps blue.
    pub fn target(self, name: &str) -> Style {
        match name {
            "ACCEPT" => self.fg(Color::Green),
            "DROP" | "REJECT" => self.fg(Color::Red),
            "RETURN" => self.fg(Color::Magenta),
            "LOG" | "NFLOG" => self.fg(Color::Yellow),
            "DNAT" | "SNAT" | "MASQUERADE" | "REDIRECT" | "NETMAP" => self.fg(Color::LightMagenta),
            _ => self.fg(Color::LightBlue),
        }
    }
}
