//! One line of text being typed after a label: the message line's prompts
//! (a path, a query, a line number) and the chat's input line draw it the
//! same way.

use ratatui::buffer::Buffer;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::core::editor::LineInput;

/// Draws `label`, the text of `input` and `suffix` after it (keys, "no
/// match", a placeholder) in `style` (the suffix in `suffix_style`). An
/// offered text shows selected (typing replaces it); a text too long for
/// the line scrolls so that the cursor stays in view, the cut marked with
/// "…". Returns where the terminal cursor goes (`None` when past the
/// line's end).
pub fn render(
    label: &str,
    input: &LineInput,
    (suffix, suffix_style): (&str, Style),
    style: Style,
    area: Rect,
    buf: &mut Buffer,
) -> Option<Position> {
    buf.set_style(area, style);
    let width = usize::from(area.width);
    let label_width = label.width();
    // Room for the text and the cursor after it.
    let room = width.saturating_sub(label_width + 1);
    let chars: Vec<char> = input.text().chars().collect();
    let cursor = input.cursor().min(chars.len());
    let width_of = |cs: &[char]| cs.iter().map(|c| c.width().unwrap_or(0)).sum::<usize>();
    // Drop chars from the left until the cursor fits, marking the cut.
    let mut first = 0;
    while first < cursor && width_of(&chars[first..cursor]) + usize::from(first > 0) > room {
        first += 1;
    }
    let shown: String = chars[first..].iter().collect();
    let cut = if first > 0 { "…" } else { "" };
    let text_style = if input.is_selected() {
        style.add_modifier(Modifier::REVERSED)
    } else {
        style
    };
    Line::from(vec![
        Span::styled(label, style),
        Span::styled(cut, style),
        Span::styled(shown, text_style),
        Span::styled(suffix, suffix_style),
    ])
    .render(area, buf);
    let at = label_width + cut.width() + width_of(&chars[first..cursor]);
    (at < width).then(|| Position::new(area.x + at as u16, area.y))
}
