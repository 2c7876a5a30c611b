//! The sale-day screen: one snapshot drawn full-screen with ratatui — a
//! header (sale, time, age, where the counts come from, the toggle), the
//! items (stock, sold, left, a bar), the gates (up, orders/s by outcome,
//! p99, connections, forwarding), and orders/s over the last minute. Narrow
//! terminals (under 100 columns) drop the rarer gate columns.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Sparkline, Table};
use ratatui::Frame;

use super::{GateRow, Snapshot};

/// Draws `s` on the whole frame.
pub(crate) fn draw(f: &mut Frame, s: &Snapshot) {
    let area = f.area();
    let items = s.items.len() as u16;
    let gates = s.gates.len().max(1) as u16;
    let [head, items_area, gates_area, rate_area, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(items + 3),
        Constraint::Length(gates + 3),
        Constraint::Min(4),
        Constraint::Length(1),
    ])
    .areas(area);
    f.render_widget(Paragraph::new(header(s)), head);
    f.render_widget(items_table(s, items_area.width), items_area);
    f.render_widget(gates_table(s, gates_area.width), gates_area);
    draw_rate(f, s, rate_area);
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(" q ", Style::new().add_modifier(Modifier::REVERSED)),
            Span::raw(" quit   counts: "),
            Span::raw(if s.counts_from == "ledger" {
                "the shared ledger (exact)"
            } else {
                "the gates' own counts, summed"
            }),
        ])),
        foot,
    );
}

fn header(s: &Snapshot) -> Line<'static> {
    let time = chrono::DateTime::from_timestamp_millis(s.at_ms)
        .map(|t| t.format("%H:%M:%S").to_string())
        .unwrap_or_default();
    let state =
        |t: &Option<super::ToggleRow>| t.as_ref().map_or("-".to_string(), |t| t.state.clone());
    let (toggle, bucket) = (state(&s.toggle), state(&s.bucket));
    let ledger = match &s.ledger {
        None => "none".to_string(),
        Some(l) if l.up => "up".to_string(),
        Some(_) => "DOWN".to_string(),
    };
    // A fair start: its entrants so far, and whether the draw is done.
    let draw = match s.draw_entrants {
        None => String::new(),
        Some(n) => {
            let done = s.gates.iter().all(|g| g.draw_done == Some(true));
            format!(
                "  draw {n} entrants, {}",
                if done { "done" } else { "open" }
            )
        }
    };
    let bold = Style::new().add_modifier(Modifier::BOLD);
    Line::from(vec![
        Span::styled(
            format!(" {} ", s.sale),
            bold.add_modifier(Modifier::REVERSED),
        ),
        Span::raw(format!(
            " {time}  age {:>4} ms  won {:>6}  sale.js {toggle}/{bucket}  ledger {ledger}{draw}",
            s.age_ms, s.won
        )),
    ])
}

fn items_table(s: &Snapshot, width: u16) -> Table<'static> {
    let bar_width = width.saturating_sub(48).clamp(4, 40) as usize;
    let rows = s.items.iter().map(|i| {
        let filled = (i.sold * bar_width as u64)
            .checked_div(i.stock)
            .unwrap_or(0) as usize;
        let bar = format!("{}{}", "█".repeat(filled), "·".repeat(bar_width - filled));
        let colour = if i.left == 0 {
            Color::Red
        } else {
            Color::Green
        };
        Row::new(vec![
            Cell::from(i.sku.clone()),
            Cell::from(format!("{:>7}", i.stock)),
            Cell::from(format!("{:>7}", i.sold)),
            Cell::from(Span::styled(
                format!("{:>7}", i.left),
                Style::new().fg(colour),
            )),
            Cell::from(bar),
        ])
    });
    Table::new(
        rows,
        [
            Constraint::Length(16),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Min(4),
        ],
    )
    .header(Row::new(["item", "  stock", "   sold", "   left", "sold of stock"]).style(bold()))
    .block(Block::new().borders(Borders::ALL).title(" items "))
}

/// Orders/s of one outcome, or of several summed.
fn rate(g: &GateRow, outcomes: &[&str]) -> f64 {
    outcomes.iter().filter_map(|o| g.per_second.get(*o)).sum()
}

fn gates_table(s: &Snapshot, width: u16) -> Table<'static> {
    let wide = width >= 100;
    let rows = s.gates.iter().map(|g| {
        let all: f64 = g.per_second.values().sum();
        let refused = rate(
            g,
            &[
                "not_found",
                "no_identity",
                "too_large",
                "rate_limited",
                "bad_request",
                "too_slow",
                "cross_site",
            ],
        );
        let name = g.id.clone().unwrap_or_else(|| g.admin.clone());
        let state = if g.up {
            Span::styled("up  ", Style::new().fg(Color::Green))
        } else {
            Span::styled(
                "DOWN",
                Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            )
        };
        let p99 = g.p99_ms.map_or("     -".to_string(), |p| format!("{p:>6}"));
        let mut cells = vec![
            Cell::from(name),
            Cell::from(state),
            Cell::from(format!("{all:>8.0}")),
            Cell::from(format!("{:>6.0}", rate(g, &["won", "repeat"]))),
            Cell::from(format!("{:>8.0}", rate(g, &["sold_out", "not_drawn"]))),
            Cell::from(format!("{refused:>7.0}")),
            Cell::from(format!("{:>5.0}", rate(g, &["unavailable"]))),
            Cell::from(p99),
        ];
        if wide {
            let opt = |v: Option<u64>| v.map_or("      -".to_string(), |n| format!("{n:>7}"));
            cells.push(Cell::from(format!("{:>7.0}", rate(g, &["outside_window"]))));
            cells.push(Cell::from(format!("{:>6}", g.connections)));
            cells.push(Cell::from(opt(g.forward_backlog)));
            cells.push(Cell::from(opt(g.dead_letters)));
        }
        Row::new(cells)
    });
    let mut head = vec![
        "gate", "", "orders/s", "  won", "sold out", "refused", "  503", "p99 ms",
    ];
    let mut widths = vec![
        Constraint::Min(10),
        Constraint::Length(4),
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Length(8),
        Constraint::Length(7),
        Constraint::Length(5),
        Constraint::Length(6),
    ];
    if wide {
        head.extend(["  early", " conns", "backlog", "   dead"]);
        widths.extend([
            Constraint::Length(7),
            Constraint::Length(6),
            Constraint::Length(7),
            Constraint::Length(7),
        ]);
    }
    Table::new(rows, widths)
        .header(Row::new(head).style(bold()))
        .block(
            Block::new()
                .borders(Borders::ALL)
                .title(" gates (per second) "),
        )
}

fn draw_rate(f: &mut Frame, s: &Snapshot, area: Rect) {
    let data: Vec<u64> = s.history.iter().map(|v| v.round() as u64).collect();
    let shown = (area.width.saturating_sub(2)) as usize;
    let data = &data[data.len().saturating_sub(shown)..];
    let title = format!(
        " orders/s, last {} s: now {:.0}, peak {} ",
        data.len(),
        s.orders_per_second,
        data.iter().max().copied().unwrap_or(0)
    );
    f.render_widget(
        Sparkline::default()
            .block(Block::new().borders(Borders::ALL).title(title))
            .data(data)
            .style(Style::new().fg(Color::Cyan)),
        area,
    );
}

fn bold() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::{GateRow, ItemRow, Snapshot};
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    fn snapshot() -> Snapshot {
        let gate = |id: &str| GateRow {
            admin: format!("http://127.0.0.1:9180/{id}"),
            id: Some(id.into()),
            up: id == "g1",
            error: None,
            requests: Default::default(),
            per_second: [("won".to_string(), 3.0), ("sold_out".to_string(), 4000.0)]
                .into_iter()
                .collect(),
            p99_ms: Some(2.0),
            connections: 12,
            forward_backlog: Some(1),
            dead_letters: Some(0),
            ledger_up: Some(true),
            draw_done: None,
        };
        Snapshot {
            sale: "demo".into(),
            at_ms: 0,
            age_ms: 7,
            counts_from: "ledger",
            items: vec![ItemRow {
                sku: "MUG-01".into(),
                stock: 100,
                sold: 40,
                left: 60,
            }],
            won: 40,
            draw_entrants: None,
            gates: vec![gate("g1"), gate("g2")],
            ledger: None,
            toggle: None,
            bucket: None,
            orders_per_second: 8006.0,
            history: vec![0.0, 100.0, 8006.0],
        }
    }

    fn screen(w: u16, h: u16) -> String {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| draw(f, &snapshot())).unwrap();
        let buf = t.backend().buffer().clone();
        (0..h)
            .map(|y| {
                (0..w)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_screen_shows_items_gates_and_rates_at_both_sizes() {
        let wide = screen(120, 40);
        for needle in [
            "MUG-01",
            "g1",
            "g2",
            "DOWN",
            "orders/s",
            "backlog",
            "age    7 ms",
            "now 8006",
        ] {
            assert!(wide.contains(needle), "{needle}:\n{wide}");
        }
        let narrow = screen(80, 24);
        for needle in ["MUG-01", "g2", "DOWN", "p99 ms"] {
            assert!(narrow.contains(needle), "{needle}:\n{narrow}");
        }
        assert!(!narrow.contains("backlog"), "{narrow}");
    }
}
