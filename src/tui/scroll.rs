//! The one scroll type of the screens' popups and panes: how far a text is scrolled down, moved
//! by the same actions everywhere (a line, a page, the top, the end) and kept within what the
//! text can show.

use super::keymap::Action;

/// Rows scrolled down from the top of a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct Scroll(pub u16);

impl Scroll {
    pub const TOP: Scroll = Scroll(0);

    /// Moved by `action` (Up/Down a row, PageUp/PageDown `page` rows, Top, Bottom), at most
    /// `max` (the furthest the text can scroll; `u16::MAX` when not known here, in which case the
    /// drawing keeps it in range). Other actions leave it.
    pub fn moved(self, action: Action, page: u16, max: u16) -> Scroll {
        let s = self.0;
        Scroll(
            match action {
                Action::Up => s.saturating_sub(1),
                Action::Down => s.saturating_add(1),
                Action::PageUp => s.saturating_sub(page),
                Action::PageDown => s.saturating_add(page),
                Action::Top => 0,
                Action::Bottom => u16::MAX,
                _ => s,
            }
            .min(max),
        )
    }

    /// The rows to skip when drawing a text that can scroll at most `max`.
    pub fn offset(self, max: u16) -> u16 {
        self.0.min(max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_within_the_text() {
        let s = Scroll::TOP.moved(Action::Down, 10, 5);
        assert_eq!(s, Scroll(1));
        assert_eq!(s.moved(Action::PageDown, 10, 5), Scroll(5));
        assert_eq!(Scroll(5).moved(Action::Up, 10, 5), Scroll(4));
        assert_eq!(Scroll(3).moved(Action::Bottom, 10, 7), Scroll(7));
        assert_eq!(Scroll(3).moved(Action::Top, 10, 7), Scroll::TOP);
        assert_eq!(Scroll(3).moved(Action::Quit, 10, 7), Scroll(3));
        assert_eq!(Scroll(9).offset(4), 4);
    }
}
