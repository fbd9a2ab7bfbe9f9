//! The completion popup drawn at the caret: below the word being completed
//! (above it when there is no room below), one candidate a line with the
//! chars the word matched in bold, its kind (`word`, `keyword`, `snippet`)
//! and a snippet's first line, the chosen one highlighted.

use ratatui::buffer::Buffer;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget};
use unicode_width::UnicodeWidthStr;

use super::theme;
use crate::core::editor::Editor;

/// Candidates shown at once; the list scrolls beyond.
const ROWS: usize = 8;
/// The popup's widest, borders included.
const MAX_WIDTH: u16 = 60;

/// Draws the popup for the caret at `caret` (where the document put it) in
/// `area`, the text's area.
pub fn render(editor: &Editor, area: Rect, caret: Option<Position>, buf: &mut Buffer) {
    let (Some(popup), Some(caret)) = (editor.completion(), caret) else {
        return;
    };
    let items = &popup.candidates;
    let label_width = items.iter().map(|c| c.label.width()).max().unwrap_or(0);
    let detail_width = items.iter().map(|c| c.detail.width()).max().unwrap_or(0);
    let kind_width = "keyword".len().max("snippet".len());
    let mut width = label_width + 2 + kind_width + 2;
    if detail_width > 0 {
        width += 2 + detail_width;
    }
    let width = (width as u16).min(MAX_WIDTH).min(area.width);
    let rows = items.len().min(ROWS);
    let height = rows as u16 + 2;
    let below = area.bottom().saturating_sub(caret.y + 1);
    let above = caret.y.saturating_sub(area.y);
    let y = if below >= height || below >= above {
        caret.y + 1
    } else {
        caret.y.saturating_sub(height)
    };
    let height = height.min(if y > caret.y { below } else { above });
    if height < 3 || width < 6 {
        return;
    }
    // The labels line up under the word being completed.
    let word = popup.prefix.width() as u16;
    let x = caret
        .x
        .saturating_sub(word + 1)
        .max(area.x)
        .min(area.right().saturating_sub(width));
    let rect = Rect::new(x, y, width, height);
    Clear.render(rect, buf);
    let visible = usize::from(height - 2);
    let first = popup.selected.saturating_sub(visible - 1);
    let mut lines = Vec::new();
    for (i, c) in items.iter().enumerate().skip(first).take(visible) {
        let base = if i == popup.selected {
            Style::new().add_modifier(Modifier::REVERSED)
        } else {
            Style::new()
        };
        let mut spans: Vec<Span> = c
            .label
            .chars()
            .enumerate()
            .map(|(j, ch)| {
                let style = if c.positions.contains(&j) {
                    base.add_modifier(Modifier::BOLD).fg(Color::Yellow)
                } else {
                    base
                };
                Span::styled(ch.to_string(), style)
            })
            .collect();
        let pad = label_width.saturating_sub(c.label.width()) + 2;
        spans.push(Span::styled(" ".repeat(pad), base));
        spans.push(Span::styled(
            format!("{:<kind_width$}", c.kind.name()),
            base.patch(theme::GUTTER),
        ));
        if !c.detail.is_empty() {
            spans.push(Span::styled(
                format!("  {}", c.detail),
                base.patch(theme::GUTTER),
            ));
        }
        lines.push(Line::from(spans));
    }
    Paragraph::new(lines)
        .block(Block::new().borders(Borders::ALL))
        .render(rect, buf);
}
